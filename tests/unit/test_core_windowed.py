"""WindowedAggregate: what it reports, and its edges to the millisecond.

What ``tests/unit/test_windowed.py`` leaves out:

* its Beam metrics (records aggregated and too late, panes per timing) and the
  progress counter ``window_panes``;
* every field of EARLY and LATE panes and of too-late rows, and the event time of a
  pane (its window's last millisecond);
* window boundaries at the millisecond: a record at a window's end, the ON_TIME pane
  at the watermark reaching the window's last millisecond, a window closing exactly
  ``allowed_lateness_s`` after it;
* a record too late for several sliding windows;
* a stop (Ctrl-C) leaving windows the sources had not reached unfired;
* the stage watermark never going back; period settings of zero or below;
* rows in batches giving the same panes as rows one by one.
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.transforms.window import TimestampedValue
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import ConfigError
from transforms.batches import PackBatches
from transforms.featurize import windowed
from transforms.featurize.vehicle import SpeedStats
from transforms.featurize.windowed import WindowedAggregate
from transforms.progress import LOCAL
from transforms.stop import clear_stop, request_stop

_GATHERED: dict[str, list] = {}
_COUNTERS = (
    "records_aggregated",
    "records_too_late",
    "panes_early",
    "panes_on_time",
    "panes_late",
    "timers_skipped_on_stop",
)


def reading(vehicle: str, t_s: float, speed: float = 50.0) -> TimestampedValue:
    row = {
        "vehicle_id": vehicle,
        "speed_kph": speed,
        "engine_temp_c": 80.0,
        "geohash": f"z{t_s}",
        "_event_time_ms": round(t_s * 1000),
        "_record_id": f"{vehicle}@{t_s}",
    }
    return TimestampedValue(row, t_s)


class _Gather(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, element: Any, timestamp: Any = beam.DoFn.TimestampParam) -> None:
        _GATHERED.setdefault(self._key, []).append((element, timestamp.micros))


def run_stream(stream: EventStream, **window_args: Any) -> tuple[list, list, dict]:
    """Runs the aggregate on the streaming DirectRunner.

    Returns the panes and too-late rows (each with its event time in µs) and the
    panes' timings as counted for progress. (The Beam counters are checked on the
    batch runner: this runner reports those of a step's first bundle only.)
    """
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    _GATHERED.clear()
    before = {t: LOCAL.counter("window_panes", timing=t) for t in ("early", "on_time", "late")}
    pipeline = beam.Pipeline(runner="BundleBasedDirectRunner", options=options)
    panes, late = pipeline | stream | WindowedAggregate("vehicle_id", SpeedStats(), **window_args)
    _ = panes | "GatherPanes" >> beam.ParDo(_Gather("panes"))
    _ = late | "GatherLate" >> beam.ParDo(_Gather("late"))
    pipeline.run().wait_until_finish()
    progress = {t: LOCAL.counter("window_panes", timing=t) - n for t, n in before.items()}
    return _GATHERED.get("panes", []), _GATHERED.get("late", []), progress


def test_panes_too_late_rows_metrics_and_progress_of_one_run() -> None:
    stream = (
        EventStream()
        .add_elements([reading("v1", 10, 40), reading("v1", 20, 60)])  # an EARLY pane of 2
        .add_elements([reading("v2", 305, 90)])
        .advance_watermark_to(310)  # v1's [0, 300) fires ON_TIME
        .add_elements([reading("v1", 30, 80)])  # late, within the 120 s lateness: a LATE pane
        .advance_watermark_to(500)  # [0, 300) closes at 299.999 + 120
        .add_elements([reading("v1", 40, 100)])  # too late
        .advance_watermark_to_infinity()  # v2's [300, 600) fires ON_TIME
    )
    panes, late, progress = run_stream(
        stream, size_s=300, allowed_lateness_s=120, early_after_count=2
    )
    by_timing = {}
    for pane, micros in panes:
        by_timing.setdefault(pane["pane_timing"], []).append(pane)
        # A pane's event time is its window's last millisecond.
        assert micros == (pane["window_end_ms"] - 1) * 1000, pane
        assert pane["window_end_ms"] == pane["window_start_ms"] + 300_000
    [early] = by_timing["EARLY"]
    assert (early["vehicle_id"], early["window_start_ms"], early["window_records"]) == ("v1", 0, 2)
    assert early["watermark_ms"] is None  # no timer of the stage had fired yet
    [late_pane] = by_timing["LATE"]
    assert (late_pane["vehicle_id"], late_pane["pane_index"], late_pane["window_records"]) == (
        "v1",
        2,
        3,
    )
    assert late_pane["watermark_ms"] >= 299_999
    assert sorted((p["vehicle_id"], p["window_start_ms"]) for p in by_timing["ON_TIME"]) == [
        ("v1", 0),
        ("v2", 300_000),
    ]
    [(too_late, micros)] = late
    assert micros == 40_000_000  # a too-late row keeps its record's event time
    assert too_late["_record_id"] == "v1@40"
    assert (too_late["window_start_ms"], too_late["window_end_ms"]) == (0, 300_000)
    assert too_late["watermark_ms"] >= 299_999 + 120_000

    assert progress == {"early": 1, "on_time": 2, "late": 1}


def test_the_beam_counters_count_records_and_panes_by_timing() -> None:
    # The batch runner: every bundle's counters are reported (see run_stream).
    rows = [reading("v1", t) for t in (1, 2, 3, 4, 5)] + [reading("v2", 70)]
    pipeline = beam.Pipeline(runner=FnApiRunner())
    _ = (
        pipeline
        | beam.Create(rows)
        | WindowedAggregate("vehicle_id", SpeedStats(), size_s=60, early_after_count=2)
    )
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace("dataplane.windows"))
    counters = dict.fromkeys(_COUNTERS, 0)  # a counter never incremented is not reported
    counters.update({c.key.metric.name: c.committed for c in query["counters"]})
    assert counters == {
        "records_aggregated": 6,
        "records_too_late": 0,
        "panes_early": 2,
        "panes_on_time": 2,
        "panes_late": 0,
        "timers_skipped_on_stop": 0,
    }


def test_an_early_pane_after_a_timer_fired_carries_the_watermark_it_knew() -> None:
    stream = (
        EventStream()
        .add_elements([reading("v1", 10)])
        .advance_watermark_to(310)  # [0, 300) fires ON_TIME: the watermark passed 299.999 s
        .add_elements([reading("v1", 400), reading("v1", 410)])  # an EARLY pane of 2
        .advance_watermark_to_infinity()
    )
    panes, _, _ = run_stream(stream, size_s=300, early_after_count=2)
    [early] = [p for p, _ in panes if p["pane_timing"] == "EARLY"]
    assert (early["window_start_ms"], early["window_records"]) == (300_000, 2)
    assert early["watermark_ms"] == 299_999


def test_a_record_at_a_windows_end_belongs_to_the_next_window() -> None:
    stream = (
        EventStream()
        .add_elements([reading("v1", 299.999), reading("v1", 300.0), reading("v1", 599.999)])
        .advance_watermark_to_infinity()
    )
    panes, _, _ = run_stream(stream, size_s=300)
    assert sorted((p["window_start_ms"], p["window_records"]) for p, _ in panes) == [
        (0, 1),
        (300_000, 2),
    ]


def test_the_on_time_pane_fires_when_the_watermark_reaches_the_windows_last_millisecond() -> None:
    stream = (
        EventStream()
        .add_elements([reading("v1", 10)])
        .advance_watermark_to(299.999)  # the last millisecond of [0, 300): complete
        .add_elements([reading("v1", 20)])  # so this one is too late (no lateness)
        .advance_watermark_to_infinity()
    )
    panes, late, _ = run_stream(stream, size_s=300)
    assert [(p["pane_timing"], p["window_records"], p["watermark_ms"]) for p, _ in panes] == [
        ("ON_TIME", 1, 299_999)
    ]
    assert [row["_record_id"] for row, _ in late] == ["v1@20"]


def test_a_window_closes_exactly_its_lateness_after_its_end() -> None:
    # With 1 ms of lateness [0, 300) closes when the watermark passes 300.000 s; the
    # watermark known at 299.999 s (v1's ON_TIME pane) leaves it open for a new key.
    stream = (
        EventStream()
        .add_elements([reading("v1", 10)])
        .advance_watermark_to(299.999)
        .add_elements([reading("v2", 20)])
        .advance_watermark_to_infinity()
    )
    panes, late, _ = run_stream(stream, size_s=300, allowed_lateness_s=0.001)
    assert sorted((p["vehicle_id"], p["pane_timing"]) for p, _ in panes) == [
        ("v1", "ON_TIME"),
        ("v2", "LATE"),
    ]
    assert late == []


def test_a_record_too_late_for_several_sliding_windows_is_reported_for_each() -> None:
    stream = (
        EventStream()
        .add_elements([reading("v1", 10), reading("v2", 170)])
        .advance_watermark_to(400)  # every window up to [120, 240) has closed
        .add_elements([reading("v1", 70)])  # in [0, 120) and [60, 180): both closed
        .advance_watermark_to_infinity()
    )
    panes, late, _ = run_stream(stream, size_s=120, period_s=60)
    assert sorted((r["_record_id"], r["window_start_ms"], r["window_end_ms"]) for r, _ in late) == [
        ("v1@70", 0, 120_000),
        ("v1@70", 60_000, 180_000),
    ]
    assert all(p["window_records"] == 1 for p, _ in panes)


def test_a_stop_leaves_windows_beyond_the_sources_watermark_unfired() -> None:
    stream = (
        EventStream()
        .add_elements([reading("v1", 10), reading("v1", 400)])
        .advance_watermark_to_infinity()  # what a stop does to the watermark
    )
    request_stop(310_000)  # the sources had read up to 310 s
    try:
        panes, late, _ = run_stream(stream, size_s=300)
    finally:
        clear_stop()
    assert [(p["window_start_ms"], p["pane_timing"]) for p, _ in panes] == [(0, "ON_TIME")]
    assert late == []


@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=20))
def test_the_stage_watermark_never_goes_back(fired: list[int]) -> None:
    stage = f"test-{id(fired)}-{len(fired)}-{fired[0]}"
    seen = [windowed._see_watermark(stage, ms) for ms in fired]
    assert seen == [max(fired[: n + 1]) for n in range(len(fired))]
    assert windowed._seen_watermark(stage) == max(fired)
    windowed._STAGE_WATERMARKS.pop(stage, None)


@pytest.mark.parametrize("period_s", [0, -60])
def test_a_period_of_zero_or_below_is_refused(period_s: float) -> None:
    with pytest.raises(ConfigError, match="period_s: must be positive and divide size_s=300"):
        WindowedAggregate("vehicle_id", SpeedStats(), size_s=300, period_s=period_s)


_BATCH_RUN: dict[str, list] = {}


class _KeepPane(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, element: Any) -> None:
        _BATCH_RUN.setdefault(self._key, []).append(element)


def _panes_of(rows: list[TimestampedValue], batch_size: int | None) -> list[tuple]:
    _BATCH_RUN.clear()
    pipeline = beam.Pipeline(runner=FnApiRunner())
    elements = pipeline | beam.Create(rows)
    if batch_size is not None:
        elements = elements | PackBatches(max_size=batch_size)
    panes, _ = elements | WindowedAggregate(
        "vehicle_id", SpeedStats(), size_s=120, period_s=60, early_after_count=2
    )
    _ = panes | beam.ParDo(_KeepPane("panes"))
    pipeline.run().wait_until_finish()
    return sorted(
        (
            p["vehicle_id"],
            p["window_start_ms"],
            p["pane_index"],
            p["pane_timing"],
            p["window_records"],
            p["avg_speed_kph"],
        )
        for p in _BATCH_RUN.get("panes", [])
    )


@pytest.mark.parametrize("batch_size", [1, 3, 100])
def test_rows_in_batches_give_the_same_panes_as_rows_one_by_one(batch_size: int) -> None:
    rows = [
        reading(v, t, speed)
        for v, t, speed in [
            ("v1", 10, 40),
            ("v2", 15, 90),
            ("v1", 70, 60),
            ("v1", 75, 20),
            ("v2", 130, 30),
            ("v1", 125, 80),
            ("v2", 20, 50),
        ]
    ]
    one_by_one = _panes_of(rows, None)
    assert len(one_by_one) >= 8
    assert _panes_of(rows, batch_size) == one_by_one
