"""StreamingFnApiRunner (behind ``dataplane job-service``): one test per FnApiRunner defect.

Each ``test_beam_still_*`` runs Beam's FnApiRunner and expects the defect; it fails
once a Beam release fixes or moves it, and the workaround in
``runners/local/job_service.py`` is then due for review. The end-to-end streaming runs
through the job service are in ``tests/integration/test_streaming.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import VarIntCoder
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec, TimerSpec, on_timer
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp

from runners.local.job_service import StreamingFnApiRunner
from transforms.sinks.batching import BatchByKey, BatchPolicy

_SEEN: dict[str, list[Any]] = {}
_LOCK = threading.Lock()
_CALLS = 400  # calls of the read before it gives up waiting (each at least 5 ms)


def _note(key: str, value: Any) -> None:
    with _LOCK:
        _SEEN.setdefault(key, []).append(value)


class _Span(RestrictionProvider):
    def initial_restriction(self, element: Any) -> OffsetRange:
        return OffsetRange(0, 1 << 40)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: Any, restriction: OffsetRange) -> int:
        return 1


class _ReadUntil(beam.DoFn):
    """Emits one record per call (event time = position seconds) until ``until`` is seen."""

    def __init__(self, until: str) -> None:
        self._until = until

    def process(
        self,
        element: str,
        tracker: Any = beam.DoFn.RestrictionParam(_Span()),
        watermark: Any = beam.DoFn.WatermarkEstimatorParam(
            ManualWatermarkEstimator.default_provider()
        ),
    ) -> Iterator[Any]:
        position = tracker.current_restriction().start
        if _SEEN.get(self._until) or position >= _CALLS:
            _note("read_ended_by", "seen" if _SEEN.get(self._until) else "call limit")
            tracker.try_claim(tracker.current_restriction().stop)
            return
        time.sleep(0.005)
        if tracker.try_claim(position):
            yield TimestampedValue(("k", position), position)
            watermark.set_watermark(Timestamp(position))
        tracker.defer_remainder(Duration(seconds=0.01))


class _Collect(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, element: Any) -> None:
        _note(self._key, element)


class _FireAfterEventTime(beam.DoFn):
    """Sets an event-time timer ``ahead_s`` after the first record; notes when it fires."""

    SET = ReadModifyWriteStateSpec("set", VarIntCoder())
    TIMER = TimerSpec("after", beam.TimeDomain.WATERMARK)

    def __init__(self, ahead_s: int) -> None:
        self._ahead_s = ahead_s

    def process(
        self,
        element: tuple[str, int],
        armed: Any = beam.DoFn.StateParam(SET),
        timer: Any = beam.DoFn.TimerParam(TIMER),
    ) -> None:
        if not armed.read():
            timer.set(Timestamp(element[1] + self._ahead_s))
            armed.write(1)

    @on_timer(TIMER)
    def fired(self) -> None:
        _note("event_timer", 1)


class _FireAfterWallTime(beam.DoFn):
    """Sets a processing-time timer ``delay_s`` ahead; notes how long it really took."""

    TIMER = TimerSpec("later", beam.TimeDomain.REAL_TIME)

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s

    def process(self, element: tuple[str, int], timer: Any = beam.DoFn.TimerParam(TIMER)) -> None:
        timer.set(Timestamp.now() + Duration(seconds=self._delay_s))
        _note("set_at", time.time())

    @on_timer(TIMER)
    def fired(self) -> None:
        _note("fired_at", time.time())


def _run(runner: Any, build: Any, *, streaming: bool = True) -> None:
    _SEEN.clear()
    options = PipelineOptions(["--streaming"] if streaming else [])
    with beam.Pipeline(runner=runner, options=options) as pipeline:
        build(pipeline)


def _across_a_stage_boundary(p: beam.Pipeline) -> None:
    read = p | "Read" >> beam.Create(["a"]) | beam.ParDo(_ReadUntil("downstream"))
    nothing = p | "Nothing" >> beam.Create([])
    _ = (read, nothing) | beam.Flatten() | beam.ParDo(_Collect("downstream"))


def _batched(p: beam.Pipeline) -> None:
    read = p | "Read" >> beam.Create(["a"]) | beam.ParDo(_ReadUntil("batch"))
    nothing = p | "Nothing" >> beam.Create([])
    _ = (
        (read, nothing)
        | beam.Flatten()
        | BatchByKey(BatchPolicy(10_000, 0.2), name="batch")
        | beam.ParDo(_Collect("batch"))
    )


# Defect 1: data reaches another stage only once its producer is done; timers wait
# until nothing else is ready.


def test_beam_still_hands_data_to_another_stage_only_at_the_end() -> None:
    _run(FnApiRunner(), _across_a_stage_boundary)
    assert _SEEN["read_ended_by"] == ["call limit"]


def test_ours_hands_data_on_while_a_read_runs() -> None:
    _run(StreamingFnApiRunner(), _across_a_stage_boundary)
    assert _SEEN["read_ended_by"] == ["seen"]


def test_ours_commits_a_batch_on_its_processing_time_timer_while_a_read_runs() -> None:
    _run(StreamingFnApiRunner(), _batched)
    assert _SEEN["read_ended_by"] == ["seen"]


# Defect 2: a stage's watermark comes from its producers alone, so timers in a
# read's stage fire as if the read were done.


def _event_timed(ahead_s: int) -> Any:
    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | beam.Create(["a"])
            | beam.ParDo(_ReadUntil("event_timer"))
            | beam.ParDo(_FireAfterEventTime(ahead_s))
        )

    return build


def test_beam_still_fires_event_time_timers_the_reads_watermark_has_not_reached() -> None:
    _run(FnApiRunner(), _event_timed(10**6))
    assert _SEEN["read_ended_by"] == ["seen"]


def test_ours_fires_event_time_timers_when_the_reads_watermark_passes_them() -> None:
    _run(StreamingFnApiRunner(), _event_timed(10**6))
    assert _SEEN["read_ended_by"] == ["call limit"]  # not before: the read never got there
    assert _SEEN["event_timer"] == [1]  # at the end of the input
    _run(StreamingFnApiRunner(), _event_timed(1))
    assert _SEEN["read_ended_by"] == ["seen"]


# Defect 3: processing-time timers are due at their hold (the element's time).


def _wall_timed(delay_s: float) -> Any:
    def build(p: beam.Pipeline) -> None:
        _ = p | beam.Create([("k", 1)]) | beam.ParDo(_FireAfterWallTime(delay_s))

    return build


def test_beam_still_fires_processing_time_timers_at_their_hold() -> None:
    _run(FnApiRunner(), _wall_timed(5.0))
    assert _SEEN["fired_at"][0] - _SEEN["set_at"][0] < 5.0


def test_ours_waits_for_a_processing_time_timer_and_fires_it_when_due() -> None:
    _run(StreamingFnApiRunner(), _wall_timed(1.0))
    assert _SEEN["fired_at"][0] - _SEEN["set_at"][0] >= 1.0


# Defect 4: a Reshuffle (a GroupByKey underneath) after a streaming read hands its
# data on only when the read ends.


def _reshuffled(p: beam.Pipeline) -> None:
    _ = (
        p
        | beam.Create(["a"])
        | beam.ParDo(_ReadUntil("reshuffled"))
        | beam.Reshuffle()
        | beam.ParDo(_Collect("reshuffled"))
    )


class _KeepingReshuffles(StreamingFnApiRunner):
    """Ours with Beam's Reshuffle: the other defects worked around, this one not."""

    run_via_runner_api = FnApiRunner.run_via_runner_api


def test_beam_still_holds_a_reshuffle_after_a_read_until_the_read_ends() -> None:
    _run(_KeepingReshuffles(), _reshuffled)
    assert _SEEN["read_ended_by"] == ["call limit"]


def test_ours_hands_reshuffled_data_on_while_a_read_runs() -> None:
    _run(StreamingFnApiRunner(), _reshuffled)
    assert _SEEN["read_ended_by"] == ["seen"]
    assert _SEEN["reshuffled"]
