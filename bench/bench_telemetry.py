"""Benchmark: the telemetry pipeline vs a hand-written loop over the same messages, one run.

    python -m bench.bench_telemetry [--count 50000] [--vehicles 50]

Both read the same Parquet replay file of Avro-framed readings (2 % malformed,
2 % impossible, 30 s out of order).

(a) one process, no Beam: decode (our RecordDecoder) → physics → geohash → 5-minute
    aggregates in a dict → aggregates and readings written once with pyarrow/deltalake;
(b) the Beam pipeline, bounded, on the FnApiRunner, with every output of the real
    pipeline (Delta merge, partitioned Parquet, dead letters). Prints events/s and b/a.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from collections import defaultdict
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pygeohash
from deltalake import write_deltalake

from beam_pipelines import telemetry
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.telemetry import generate_telemetry
from schemas.registry import LocalFileRegistry
from transforms.featurize.bounds import TELEMETRY_BOUNDS, bound_violation
from transforms.validate import RecordDecoder

_WINDOW_MS = 300_000


def hand_loop(path: str, lake: str) -> int:
    """The same work without Beam; returns messages read."""
    registry = LocalFileRegistry()
    decoder = RecordDecoder(registry, registry.latest("vehicle_telemetry"))
    values = pq.read_table(path, columns=["value"]).column("value").to_pylist()
    windows: dict[tuple[str, int], list[Any]] = defaultdict(lambda: [0, 0.0, math.inf, 0.0, 0.0])
    readings = []
    for value in values:
        try:
            row = decoder.decode(value)
        except Exception:
            continue
        if bound_violation(row, TELEMETRY_BOUNDS):
            continue
        row["geohash"] = pygeohash.encode(row["lat"], row["lon"], precision=6)
        ts_ms = int(row["ts"].timestamp() * 1000)
        acc = windows[(row["vehicle_id"], ts_ms - ts_ms % _WINDOW_MS)]
        acc[0] += 1
        acc[1] += row["speed_kph"]
        acc[2] = min(acc[2], row["speed_kph"])
        acc[3] = max(acc[3], row["speed_kph"])
        acc[4] += row["engine_temp_c"]
        readings.append(row)
    aggregates = [
        {
            "vehicle_id": v,
            "window_start": s,
            "count": a[0],
            "avg_speed_kph": a[1] / a[0],
            "min_speed_kph": a[2],
            "max_speed_kph": a[3],
            "avg_engine_temp_c": a[4] / a[0],
        }
        for (v, s), a in windows.items()
    ]
    write_deltalake(f"{lake}/hand_windows", pa.Table.from_pylist(aggregates))
    pq.write_table(pa.Table.from_pylist(readings), f"{lake}/hand_readings.parquet")
    return len(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--vehicles", type=int, default=50)
    args = parser.parse_args()
    lake = tempfile.mkdtemp(prefix="bench-telemetry-")
    source = f"{lake}/input.parquet"
    messages = generate_telemetry(
        args.count,
        vehicles=args.vehicles,
        bad_ratio=0.02,
        physics_bad_ratio=0.02,
        max_delay_ms=30_000,
    )
    publish(f"file://{source}", messages)

    started = time.perf_counter()
    seen = hand_loop(source, lake)
    hand_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = telemetry.run(
        [
            f"--source=file://{source}",
            f"--output={lake}/windows",
            f"--readings_output={lake}/readings",
            f"--late_output={lake}/late",
            f"--dlq={lake}/dlq",
            "--bounded",
            "--runner=direct",
        ]
    )
    beam_s = time.perf_counter() - started
    a, b = seen / hand_s, summary.records_in / beam_s
    print(
        f"records: hand loop {seen}, pipeline {summary.records_in} "
        f"({summary.valid} valid, {summary.dead_letters} dead letters)"
    )
    print(f"(a) hand-written loop : {a:9,.0f} events/s ({hand_s:.2f} s)")
    print(f"(b) pipeline, direct  : {b:9,.0f} events/s ({beam_s:.2f} s, startup included)")
    print(f"ratio b/a             : {b / a:.2f}")


if __name__ == "__main__":
    main()
