"""WindowedAggregate under explicit watermarks: on-time, late within lateness, too late."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.transforms.window import TimestampedValue

from schemas.errors import ConfigError
from tests.helpers import collect
from transforms.featurize.vehicle import SpeedStats
from transforms.featurize.windowed import WindowedAggregate, window_starts

_GATHERED: dict[str, list] = {}


def reading(vehicle: str, t_s: float, speed: float, rid: str = "") -> dict[str, Any]:
    return {
        "vehicle_id": vehicle,
        "speed_kph": speed,
        "engine_temp_c": 80.0,
        "geohash": f"z{int(t_s)}",
        "_event_time_ms": int(t_s * 1000),
        "_record_id": rid or f"{vehicle}@{t_s}",
    }


def at(row: dict[str, Any]) -> TimestampedValue:
    return TimestampedValue(row, row["_event_time_ms"] / 1000)


class _Gather(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, element: Any) -> None:
        _GATHERED.setdefault(self._key, []).append(element)


def run_stream(stream: EventStream, **window_args: Any) -> tuple[list, list]:
    """Runs the aggregate over a TestStream on the streaming DirectRunner."""
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    _GATHERED.clear()
    with beam.Pipeline(runner="BundleBasedDirectRunner", options=options) as p:
        panes, late = p | stream | WindowedAggregate("vehicle_id", SpeedStats(), **window_args)
        _ = panes | "GatherPanes" >> beam.ParDo(_Gather("panes"))
        _ = late | "GatherLate" >> beam.ParDo(_Gather("late"))
    return _GATHERED.get("panes", []), _GATHERED.get("late", [])


def summary(pane: dict[str, Any]) -> tuple:
    return (
        pane["vehicle_id"],
        pane["window_start_ms"] // 1000,
        pane["pane_timing"],
        pane["pane_index"],
        pane["pane_records"],
        pane["window_records"],
        pane["avg_speed_kph"],
    )


def test_on_time_late_within_lateness_and_too_late() -> None:
    stream = (
        EventStream()
        .add_elements([at(reading("v1", 10, 40)), at(reading("v1", 20, 60))])
        .add_elements([at(reading("v2", 305, 90))])
        .advance_watermark_to(310)  # [0, 300) is complete
        .add_elements([at(reading("v1", 30, 80))])  # late, within the 120 s lateness
        .advance_watermark_to(500)  # [0, 300) closes at 299.999 + 120
        .add_elements([at(reading("v1", 40, 100))])  # too late
        .advance_watermark_to_infinity()
    )
    panes, late = run_stream(stream, size_s=300, allowed_lateness_s=120)

    assert sorted(map(summary, panes)) == [
        ("v1", 0, "LATE", 1, 1, 3, 60.0),
        ("v1", 0, "ON_TIME", 0, 2, 2, 50.0),
        ("v2", 300, "ON_TIME", 0, 1, 1, 90.0),
    ]
    [too_late] = late
    assert too_late["_record_id"] == "v1@40" and too_late["window_start_ms"] == 0
    assert too_late["watermark_ms"] >= 299_999 + 120_000
    on_time = next(p for p in panes if p["pane_timing"] == "ON_TIME" and p["vehicle_id"] == "v1")
    assert on_time["watermark_ms"] >= 299_999
    late_pane = next(p for p in panes if p["pane_timing"] == "LATE")
    assert late_pane["max_speed_kph"] == 80.0 and late_pane["last_zone"] == "z30"


def test_zero_lateness_sends_every_late_record_to_the_late_output() -> None:
    stream = (
        EventStream()
        .add_elements([at(reading("v1", 10, 40))])
        .advance_watermark_to(300)
        .add_elements([at(reading("v1", 20, 50)), at(reading("v1", 310, 70))])
        .advance_watermark_to_infinity()
    )
    panes, late = run_stream(stream, size_s=300)

    assert sorted(map(summary, panes)) == [
        ("v1", 0, "ON_TIME", 0, 1, 1, 40.0),
        ("v1", 300, "ON_TIME", 0, 1, 1, 70.0),
    ]
    assert [row["_record_id"] for row in late] == ["v1@20"]


def test_a_window_first_seen_after_its_end_fires_late_panes() -> None:
    stream = (
        EventStream()
        .add_elements([at(reading("v1", 400, 40))])
        .advance_watermark_to(650)  # [300, 600) of v1 fires ON_TIME
        .add_elements([at(reading("v2", 310, 55))])  # v2's [300, 600) is new, but past its end
        .advance_watermark_to_infinity()
    )
    panes, late = run_stream(stream, size_s=300, allowed_lateness_s=600)

    assert sorted(map(summary, panes)) == [
        ("v1", 300, "ON_TIME", 0, 1, 1, 40.0),
        ("v2", 300, "LATE", 0, 1, 1, 55.0),
    ]
    assert late == []


def test_early_panes_then_on_time_pane() -> None:
    rows = [at(reading("v1", t, 10 * n)) for n, t in enumerate((1, 2, 3, 4, 5), start=1)]
    stream = EventStream().add_elements(rows).advance_watermark_to_infinity()
    panes, _ = run_stream(stream, size_s=60, early_after_count=2)

    assert [(p["pane_timing"], p["pane_index"], p["window_records"]) for p in panes] == [
        ("EARLY", 0, 2),
        ("EARLY", 1, 4),
        ("ON_TIME", 2, 5),
    ]
    assert panes[-1]["pane_records"] == 1 and panes[-1]["avg_speed_kph"] == 30.0


def test_sliding_windows_count_each_record_in_every_window_holding_it() -> None:
    rows = [reading("v1", t, 50) for t in (10, 70, 130)]
    panes, late = collect(
        lambda p: (
            p
            | beam.Create(rows)
            | beam.Map(at)
            | WindowedAggregate("vehicle_id", SpeedStats(), size_s=120, period_s=60)
        )
    )
    counts = {p["window_start_ms"] // 1000: p["count"] for p in panes}
    assert counts == {-60: 1, 0: 2, 60: 2, 120: 1}
    assert late == []


def test_window_starts_agree_with_beams_sliding_windows() -> None:
    from apache_beam.transforms.window import SlidingWindows, WindowFn
    from apache_beam.utils.timestamp import Timestamp

    for ms in (0, 1, 59_999, 60_000, 123_456, 3_600_000):
        context = WindowFn.AssignContext(Timestamp(micros=ms * 1000))
        beams = SlidingWindows(size=300, period=60).assign(context)
        assert sorted(window_starts(ms, 300_000, 60_000)) == sorted(
            w.start.micros // 1000 for w in beams
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"size_s": 0}, "size_s: must be positive"),
        ({"size_s": 300, "period_s": 70}, "period_s: must be positive and divide size_s=300"),
        ({"size_s": 300, "period_s": 600}, "period_s: must be positive and divide"),
        ({"allowed_lateness_s": -1}, "allowed_lateness_s: must be zero or more"),
        ({"early_after_count": 0}, "early_after_count: must be positive"),
    ],
)
def test_bad_window_settings_name_the_parameter(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WindowedAggregate("vehicle_id", SpeedStats(), **args)


def test_an_empty_key_field_is_refused() -> None:
    with pytest.raises(ConfigError, match="key_field: expected the field rows are grouped by"):
        WindowedAggregate("", SpeedStats())


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (
            {},
            {
                "key_field": "vehicle_id",
                "size_s": 300.0,
                "period_s": 300.0,
                "allowed_lateness_s": 0.0,
                "early_after_count": 0,
            },
        ),
        (
            {"size_s": 60, "period_s": 15, "allowed_lateness_s": 2.5, "early_after_count": 3},
            {
                "key_field": "vehicle_id",
                "size_s": 60.0,
                "period_s": 15.0,
                "allowed_lateness_s": 2.5,
                "early_after_count": 3,
            },
        ),
    ],
)
def test_display_data_shows_the_window_settings(
    args: dict[str, Any], shown: dict[str, Any]
) -> None:
    assert WindowedAggregate("vehicle_id", SpeedStats(), **args).display_data() == shown


@pytest.mark.parametrize("args", [{"size_s": 0.001}, {"size_s": 60, "period_s": 60}])
def test_smallest_and_equal_settings_are_accepted(args: dict[str, Any]) -> None:
    WindowedAggregate("vehicle_id", SpeedStats(), allowed_lateness_s=0, early_after_count=1, **args)
