"""Benchmark: the telemetry pipeline vs a hand-written loop over the same messages, one run.

    python -m bench.bench_telemetry [--count 50000] [--vehicles 50]

Both read the same Parquet replay file of Avro-framed readings (2 % malformed,
2 % impossible, 30 s out of order).

(a) one process, no Beam (bench.loops.telemetry_loop): decode (our RecordDecoder) →
    physics → geohash → 5-minute aggregates in a dict → aggregates and readings written
    once with pyarrow/deltalake;
(b) the Beam pipeline, bounded, on the FnApiRunner, with every output of the real
    pipeline (Delta merge, partitioned Parquet, dead letters). Prints events/s and b/a.

For every benchmark in one table, each side in its own process: ``python -m bench``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from beam_pipelines import telemetry
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.telemetry import generate_telemetry
from bench.loops import telemetry_loop
from bench.sides import telemetry_flags


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--vehicles", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as lake:
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
        seen = telemetry_loop(source, lake)["read"]
        hand_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = telemetry.run(telemetry_flags(source, lake))
        beam_s = time.perf_counter() - started
    a, b = seen / hand_s, summary.records_in / beam_s
    print(
        f"records: hand loop {seen}, pipeline {summary.records_in} "
        f"({summary.valid} valid, {summary.dead_letters} dead letters)"
    )
    print(f"(a) hand-written loop : {a:9,.0f} events/s ({hand_s:.2f} s)")
    print(f"(b) pipeline, direct  : {b:9,.0f} events/s ({beam_s:.2f} s, with its build)")
    print(f"ratio b/a             : {b / a:.2f}")


if __name__ == "__main__":
    main()
