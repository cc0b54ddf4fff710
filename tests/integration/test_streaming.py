"""Streaming runs on the local runner against the real broker: waves, Ctrl-C, restarts, windows.

The pipelines run as a user runs them (``python -m beam_pipelines.<name>`` without
``--bounded``) in a subprocess stopped with SIGINT; what they did is read back from
their tables. Waits are bounded by the issue's 30 s contract, never assumed.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from pathlib import Path
from typing import Any

import apache_beam as beam
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.window import FixedWindows
from deltalake import DeltaTable

from beam_pipelines.feeds.tweets import GeneratedMessage, generate_tweets
from beam_pipelines.launch.presets import resolve_runner
from bench.streaming import StreamingProcess, TableWatcher, TimedProducer
from schemas.codecs import encode_framed
from schemas.registry import LocalFileRegistry
from tests.helpers import finish_within
from transforms.sinks import WriteDeadLettersToDelta, WriteToDelta
from transforms.sources.kafka import ReadFromKafka
from transforms.stop import clear_stop, request_stop
from transforms.validate import DecodeAndValidate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOUND_S = 30.0  # the contract: visible within 30 s of being produced
START_UP_S = 120.0  # a cold start on a busy machine imports Beam, VADER and deltalake


def _sentiment(bootstrap: str, topic: str, lake: Path, runner: list[str]) -> StreamingProcess:
    return StreamingProcess(
        "beam_pipelines.sentiment",
        [
            f"--source=kafka://{bootstrap}/{topic}",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            "--max_batch_latency_s=2",
            "--progress_interval_s=1",
            *runner,
        ],
    ).start()


def _assert_clean_stop(stopped: Any) -> None:
    assert stopped.exit_code == 0, stopped.stderr[-2000:]
    assert "Traceback" not in stopped.stderr, stopped.stderr[-2000:]
    assert "Run summary (stopped on request)" in stopped.stdout


def test_waves_land_while_streaming_and_a_stop_and_restart_keep_each_record_once(
    kafka_bootstrap: str, new_topic: Any, tmp_path: Path, runner_flags: list[str]
) -> None:
    topic = new_topic(partitions=3)
    producer = TimedProducer(kafka_bootstrap, topic)
    watcher = TableWatcher([str(tmp_path / "tweets"), str(tmp_path / "dead_letters")])
    run = _sentiment(kafka_bootstrap, topic, tmp_path, runner_flags)
    try:
        first = producer.send(generate_tweets(300, bad_ratio=0.05, seed=1))
        assert watcher.wait_for(first, timeout_s=START_UP_S), "first wave never landed"
        second = producer.send(generate_tweets(300, bad_ratio=0.05, seed=2))
        assert watcher.wait_for(second, timeout_s=BOUND_S), "a wave took over 30 s to land"
    finally:
        stopped = run.stop()
    _assert_clean_stop(stopped)
    assert "records read" in stopped.stderr  # the progress lines off a terminal

    while_down = producer.send(generate_tweets(300, bad_ratio=0.05, seed=3))
    rerun = _sentiment(kafka_bootstrap, topic, tmp_path, runner_flags)
    try:
        assert watcher.wait_for(while_down, timeout_s=START_UP_S)
    finally:
        _assert_clean_stop(rerun.stop())

    watcher.poll()
    assert set(watcher.copies) == set(producer.produced_at)  # nothing lost
    assert set(watcher.copies.values()) == {1}  # nothing twice
    letters = DeltaTable(str(tmp_path / "dead_letters")).to_pyarrow_table().to_pylist()
    assert len(letters) == 45  # 5 % of 900
    for letter in letters:  # each dead letter keeps the bytes that were produced
        assert letter["value"] == producer.values[(letter["_partition"], letter["_position"])]


def test_a_steady_stream_lands_while_the_run_goes_on(
    kafka_bootstrap: str, new_topic: Any, tmp_path: Path
) -> None:
    """600 records a second for 15 s: every one lands before the run is stopped.

    The local runner used to hold a share back (bundles queued behind newer ones
    at the sinks' batchers, dead letters most of all) until the run stopped.
    """
    topic = new_topic(partitions=3)
    producer = TimedProducer(kafka_bootstrap, topic)
    watcher = TableWatcher([str(tmp_path / "tweets"), str(tmp_path / "dead_letters")])
    messages = generate_tweets(10**6, bad_ratio=0.03, seed=4)
    run = _sentiment(kafka_bootstrap, topic, tmp_path, ["--runner=direct"])
    try:
        warm_up = producer.send(itertools.islice(messages, 100))
        assert watcher.wait_for(warm_up, timeout_s=START_UP_S), "the run never started"
        sent: list[Any] = []
        ends = time.monotonic() + 15
        while time.monotonic() < ends:
            sent += producer.send(itertools.islice(messages, 60))
            time.sleep(0.1)
        landed = watcher.wait_for(sent, timeout_s=START_UP_S)
        assert landed, f"{len(set(sent) - watcher.seen_at.keys())} of {len(sent)} held back"
    finally:
        stopped = run.stop()
    _assert_clean_stop(stopped)
    watcher.poll()
    assert set(watcher.copies.values()) == {1}


# Telemetry: readings produced live, out of order and late, in event-time windows.

WINDOW_S, LATENESS_S = 10, 10


def _reading(vehicle: str, ts_ms: int, speed: float) -> dict[str, Any]:
    return {
        "vehicle_id": vehicle,
        "ts": ts_ms,
        "speed_kph": speed,
        "engine_temp_c": 90.0,
        "lat": 52.52,
        "lon": 13.40,
    }


class _Fleet:
    """Readings framed with the registry's vehicle_telemetry v1; arrival time = Kafka time."""

    def __init__(self, producer: TimedProducer) -> None:
        self._producer = producer
        self._schema = LocalFileRegistry().get("vehicle_telemetry", 1)
        self.readings: list[dict[str, Any]] = []

    def send(self, readings: list[tuple[dict[str, Any], int]]) -> list[tuple[str, str]]:
        messages = [
            GeneratedMessage(
                reading["vehicle_id"].encode(), encode_framed(self._schema, reading), arrival, "r"
            )
            for reading, arrival in readings
        ]
        self.readings += [reading for reading, _ in readings]
        return self._producer.send(messages)


def _oracle(readings: list[dict[str, Any]], closed_before_ms: int) -> pd.DataFrame:
    frame = pd.DataFrame(readings)
    frame["window_start"] = frame["ts"] // (WINDOW_S * 1000) * (WINDOW_S * 1000)
    frame = frame[frame["window_start"] + WINDOW_S * 1000 <= closed_before_ms]
    grouped = frame.groupby(["vehicle_id", "window_start"])["speed_kph"]
    return grouped.agg(["count", "mean", "min", "max"]).sort_index()


def _aggregates(uri: str) -> pd.DataFrame:
    rows = DeltaTable(uri).to_pyarrow_table().to_pandas()
    rows["window_start"] = [round(t.timestamp() * 1000) for t in rows["window_start"]]
    return rows.set_index(["vehicle_id", "window_start"]).sort_index()


def _wait_for_rows(uri: str, check: Any, timeout_s: float) -> pd.DataFrame:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            rows = _aggregates(uri)
            if check(rows):
                return rows
        except Exception:  # not created yet
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            raise AssertionError(f"{uri} never matched; last rows:\n{rows}")
        time.sleep(0.2)


def test_telemetry_streams_windows_that_equal_an_independent_computation(
    kafka_bootstrap: str, new_topic: Any, tmp_path: Path, runner_flags: list[str]
) -> None:
    topic = new_topic(partitions=1)
    fleet = _Fleet(TimedProducer(kafka_bootstrap, topic))
    # Event times an hour ahead: a partition's idle watermark (the wall clock) never
    # overtakes them, so windows close only as the test's readings say.
    base = (int(time.time()) + 3600) // WINDOW_S * WINDOW_S * 1000
    aggregates = str(tmp_path / "windows")
    run = StreamingProcess(
        "beam_pipelines.telemetry",
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={aggregates}",
            f"--readings_output={tmp_path / 'readings'}",
            f"--late_output={tmp_path / 'late'}",
            f"--dlq={tmp_path / 'dead_letters'}",
            f"--window_s={WINDOW_S}",
            f"--allowed_lateness_s={LATENESS_S}",
            "--max_batch_latency_s=1",
            *runner_flags,
        ],
    ).start()
    rng = random.Random(5)
    try:
        # Window 0 and window 1, shuffled; the watermark ends near base + 19 s.
        first = [
            (_reading(v, base + s * 1000 + 100, rng.uniform(20, 120)), 0)
            for v in ("v1", "v2")
            for s in range(1, 19, 2)
        ]
        rng.shuffle(first)
        fleet.send([(r, r["ts"]) for r, _ in first])
        on_time = _wait_for_rows(aggregates, lambda t: len(t) == 2, START_UP_S)
        assert set(on_time["pane_timing"]) == {"ON_TIME"}  # window 0 only: window 1 is open
        # A late reading for window 0, within its lateness: a LATE pane updates the row.
        fleet.send([(_reading("v1", base + 5_500, 200.0), base + 19_500)])
        _wait_for_rows(aggregates, lambda t: "LATE" in set(t["pane_timing"]), BOUND_S)
        # The watermark passes base + 31 s: window 0 closes, window 1 fires.
        fleet.send([(_reading("v2", base + 31_000, 50.0), base + 31_000)])
        _wait_for_rows(aggregates, lambda t: len(t) == 4, BOUND_S)
        # Too late for window 0 now: it goes to the late table, the row stays.
        too_late = _reading("v1", base + 6_000, 1.0)
        fleet.send([(too_late, base + 32_000)])
        late_rows = _wait_for_late(str(tmp_path / "late"), BOUND_S)
        # Close window 3 (base + 30 .. 40 s) and leave window 5 open at the stop.
        fleet.send([(_reading("v2", base + 55_000, 60.0), base + 55_000)])
        final = _wait_for_rows(aggregates, lambda t: len(t) == 5, BOUND_S)
    finally:
        stopped = run.stop()
    _assert_clean_stop(stopped)

    counted = [r for r in fleet.readings if r is not too_late]
    expected = _oracle(counted, closed_before_ms=base + 55_000)
    assert list(final.index) == list(expected.index)  # window 5 was not fired by the stop
    assert final["count"].tolist() == expected["count"].tolist()
    assert final["avg_speed_kph"].tolist() == pytest.approx(expected["mean"].tolist())
    assert final["min_speed_kph"].tolist() == pytest.approx(expected["min"].tolist())
    assert final["max_speed_kph"].tolist() == pytest.approx(expected["max"].tolist())
    timings = final["pane_timing"].to_dict()
    assert timings[("v1", base)] == "LATE" and final.loc[("v1", base), "pane_index"] == 1
    assert timings[("v2", base)] == "ON_TIME" and timings[("v1", base + 10_000)] == "ON_TIME"
    assert [(r["vehicle_id"], r["speed_kph"]) for r in late_rows] == [("v1", 1.0)]
    readings = ds.dataset(str(tmp_path / "readings"), format="parquet", partitioning="hive")
    assert readings.count_rows() == len(fleet.readings)  # every reading, late ones too


def _wait_for_late(uri: str, timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            rows = DeltaTable(uri).to_pyarrow_table().to_pylist()
            if rows:
                return rows
        except Exception:  # not created yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"nothing reached {uri} within {timeout_s} s")


# A user's own job: our transforms, Beam's windowing and a DoFn of its own.

_WINDOW_COUNTS: list[tuple[str, int]] = []
_LOCK = threading.Lock()


class _Shout(beam.DoFn):
    def process(self, row: dict[str, Any]) -> Any:
        yield {**row, "shout": row["text"].upper()}


class _Keep(beam.DoFn):
    def process(self, element: tuple[str, int]) -> None:
        with _LOCK:
            _WINDOW_COUNTS.append(element)


def test_a_users_job_of_our_transforms_and_its_own_dofn_streams_on_the_local_runner(
    kafka_bootstrap: str, new_topic: Any, tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    producer = TimedProducer(kafka_bootstrap, topic)
    options = PipelineOptions(["--runner=direct"])
    pipeline = beam.Pipeline(runner=resolve_runner(options, bounded=False), options=options)
    registry = LocalFileRegistry()
    rows, dead = (
        pipeline
        | ReadFromKafka(bootstrap_servers=kafka_bootstrap, topic=topic)
        | DecodeAndValidate(registry, subject="tweet")
    )
    shouted = rows | beam.ParDo(_Shout())
    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("shout", pa.string())])
    _ = shouted | WriteToDelta(
        str(tmp_path / "shouts"), schema=schema, app_id="shouts", max_batch_latency_s=1
    )
    _ = dead | WriteDeadLettersToDelta(str(tmp_path / "dlq"), app_id="shouts-dlq")
    _ = (
        shouted
        | beam.WindowInto(FixedWindows(60))
        | beam.Map(lambda row: (row["lang"], 1))
        | beam.CombinePerKey(sum)
        | beam.ParDo(_Keep())
    )
    _WINDOW_COUNTS.clear()
    clear_stop()
    result = pipeline.run()
    try:
        sent = producer.send(generate_tweets(200, bad_ratio=0.05, seed=9))
        watcher = TableWatcher([str(tmp_path / "shouts"), str(tmp_path / "dlq")])
        assert watcher.wait_for(sent, timeout_s=START_UP_S)
    finally:
        request_stop()
        finish_within(result, 120)
        clear_stop()

    shouts = DeltaTable(str(tmp_path / "shouts")).to_pyarrow_table().to_pylist()
    assert len(shouts) == 190
    assert all(row["shout"] == row["text"].upper() for row in shouts)
    assert sum(count for _, count in _WINDOW_COUNTS) == 190  # Beam's own windows fired
    counters = result.metrics().query(beam.metrics.MetricsFilter().with_name("rows_written"))
    assert sum(c.committed for c in counters["counters"]) == 200
