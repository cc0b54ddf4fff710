"""README claim: a streaming telemetry run writes readings that came after their window closed
to ``--late_output``, "with the window and the watermark they missed", and leaves them out of
the window's aggregate ("each record is either aggregated or written to the late output").

A batch run cannot show it ("In a batch run the watermark only moves at the end, so nothing is
late there"), so this runs the pipeline streaming on the local runner, as a user does, and
waits on the tables for each step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from beam_pipelines.feeds.tweets import GeneratedMessage
from bench.streaming import StreamingProcess, TimedProducer
from schemas.codecs import encode_framed
from schemas.registry import LocalFileRegistry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WINDOW_MS = 10_000
START_UP_S, BOUND_S = 120.0, 30.0


def _reading(vehicle: str, ts_ms: int, speed: float) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle,
        "ts": ts_ms,
        "speed_kph": speed,
        "engine_temp_c": 90.0,
        "lat": 52.52,
        "lon": 13.40,
    }


def _send(producer: TimedProducer, readings: list[tuple[dict[str, Any], int]]) -> None:
    """Readings framed with vehicle_telemetry v1; each arrives (Kafka time) at its given ms."""
    schema = LocalFileRegistry().get("vehicle_telemetry", 1)
    producer.send(
        GeneratedMessage(r["vehicle_id"].encode(), encode_framed(schema, r), arrival, "reading")
        for r, arrival in readings
    )


def _rows_when(uri: str, ready: Callable[[list[dict[str, Any]]], bool], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
        except Exception:  # not created yet
            rows = []
        if ready(rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"{uri} never got there within {timeout_s} s; last rows: {rows}")


def _ms(value: Any) -> int:
    return round(value.timestamp() * 1000)


def test_a_reading_after_its_window_closed_lands_in_the_late_output_only(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    producer = TimedProducer(kafka_bootstrap, topic)
    # Event times an hour ahead: the idle watermark (the wall clock) never reaches them, so
    # windows close only as the readings' arrival times say.
    base = (int(time.time()) + 3600) // 10 * 10 * 1000
    windows, late = str(tmp_path / "windows"), str(tmp_path / "late")
    run = StreamingProcess(
        "beam_pipelines.telemetry",
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={windows}",
            f"--readings_output={tmp_path / 'readings'}",
            f"--late_output={late}",
            f"--dlq={tmp_path / 'dead_letters'}",
            "--window_s=10",
            "--allowed_lateness_s=0",
            "--max_batch_latency_s=1",
            "--runner=direct",
        ],
    ).start()
    try:
        on_time = [(_reading("v1", base + s * 1000, 10.0 * s), base + s * 1000) for s in (1, 4, 7)]
        _send(producer, [*on_time, (_reading("v1", base + 15_000, 99.0), base + 15_000)])
        first = _rows_when(windows, lambda rows: len(rows) == 1, START_UP_S)
        # The watermark is past window 0's end (no lateness allowed): this one is too late.
        _send(producer, [(_reading("v1", base + 5_000, 1.0), base + 16_000)])
        (late_row,) = _rows_when(late, lambda rows: len(rows) == 1, BOUND_S)
        # Window 1 closes after the late reading: its row shows the run went on.
        _send(producer, [(_reading("v1", base + 25_000, 5.0), base + 25_000)])
        final = _rows_when(windows, lambda rows: len(rows) == 2, BOUND_S)
    finally:
        stopped = run.stop()
    assert stopped.exit_code == 0, stopped.stderr[-2000:]

    assert late_row["vehicle_id"] == "v1" and late_row["speed_kph"] == 1.0
    assert _ms(late_row["window_start"]) == base and _ms(late_row["window_end"]) == base + 10_000
    # The watermark known to have passed (a lower bound): at least window 0's last instant.
    assert base + WINDOW_MS - 1 <= _ms(late_row["watermark_at_arrival"]) <= base + 16_000
    window_0 = [r for r in final if _ms(r["window_start"]) == base]
    assert [(r["count"], r["min_speed_kph"]) for r in window_0] == [(3, 10.0)]  # not counted
    assert [(r["count"], r["min_speed_kph"]) for r in first] == [(3, 10.0)]
