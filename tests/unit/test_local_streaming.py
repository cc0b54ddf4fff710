"""LocalStreamingRunner: one test per Beam defect it works around, each against Beam's own runner.

Each ``test_beam_still_*`` runs Beam's streaming direct runner on a small pipeline
and expects the defect. When a Beam upgrade fixes or moves one, that test fails:
the matching workaround in ``runners/local_streaming.py`` is then due for review.
The ``test_ours_*`` beside it runs the same pipeline on our runner.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.direct import direct_runner
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import FixedWindows, TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from runners.local_streaming import LocalStreamingRunner
from tests.helpers import finish_within
from transforms.sinks.batching import BatchByKey
from transforms.stop import clear_stop, request_stop

_SEEN: dict[str, list[Any]] = {}
_LOCK = threading.Lock()


class _Span(RestrictionProvider):
    def __init__(self, stop: int) -> None:
        self._stop = stop

    def initial_restriction(self, element: Any) -> OffsetRange:
        return OffsetRange(0, self._stop)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: Any, restriction: OffsetRange) -> int:
        return restriction.size()


class _Count(beam.DoFn):
    """Emits 0..total-1 (timestamped n seconds), ``per_call`` per call, deferring in between."""

    def __init__(self, total: int, per_call: int, as_generator: bool = True) -> None:
        self._total, self._per_call, self._as_generator = total, per_call, as_generator

    def process(
        self,
        element: str,
        tracker: Any = beam.DoFn.RestrictionParam(_Span(1 << 30)),
        watermark: Any = beam.DoFn.WatermarkEstimatorParam(
            ManualWatermarkEstimator.default_provider()
        ),
    ) -> Any:
        outputs = self._call(element, tracker, watermark)
        return outputs if self._as_generator else list(outputs)

    def _call(self, element: str, tracker: Any, watermark: Any) -> Iterator[Any]:
        position = tracker.current_restriction().start
        for _ in range(self._per_call):
            if position >= self._total:
                tracker.try_claim(tracker.current_restriction().stop)
                return
            if not tracker.try_claim(position):
                return
            yield TimestampedValue((element, position), position)
            watermark.set_watermark(Timestamp(position))
            position += 1
        tracker.defer_remainder(Duration(seconds=0.01))


class _Collect(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, element: Any) -> None:
        Metrics.counter("test", self._key).inc()
        with _LOCK:
            _SEEN.setdefault(self._key, []).append(element)


def _streaming() -> PipelineOptions:
    return PipelineOptions(["--streaming"])


def _run(runner: Any, build: Any) -> Any:
    _SEEN.clear()
    pipeline = beam.Pipeline(runner=runner, options=_streaming())
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    return result


class _BeamWithOrderFixed(BundleBasedDirectRunner):
    """Beam's runner with only defect 1 worked around, to reach the ones behind it."""

    def run_pipeline(self, pipeline: beam.Pipeline, options: PipelineOptions) -> Any:
        overrides = direct_runner._get_transform_overrides(options)
        late = [o for o in overrides if type(o).__name__.startswith("Streaming")]
        pipeline.replace_all([o for o in overrides if o not in late] + late)
        return super().run_pipeline(pipeline, options)


def _counted(total: int, per_call: int, *, as_generator: bool = True) -> Any:
    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | beam.Create(["a"])
            | beam.ParDo(_Count(total, per_call, as_generator))
            | beam.ParDo(_Collect("out"))
        )

    return build


# Defect 1: the streaming GroupByKey overrides run before the final GroupByKey override.


def test_beam_still_fails_on_a_splittable_dofn_in_streaming_override_order() -> None:
    with pytest.raises(Exception, match="was not replaced as expected"):
        _run(BundleBasedDirectRunner(), _counted(3, 10))


def test_ours_runs_a_splittable_dofn_in_streaming() -> None:
    _run(LocalStreamingRunner(), _counted(3, 10))
    assert sorted(_SEEN["out"]) == [("a", 0), ("a", 1), ("a", 2)]


# Defect 2: check_done is called before the generator process() returned is read.


def test_beam_still_checks_done_before_reading_a_generator() -> None:
    with pytest.raises(Exception, match="is not done since work in range"):
        _run(_BeamWithOrderFixed(), _counted(3, 10, as_generator=True))


# Defect 3: a self-checkpoint (defer_remainder) yields no residual: the read stops.


def test_beam_still_drops_what_a_read_defers() -> None:
    _run(_BeamWithOrderFixed(), _counted(10, 4, as_generator=False))
    assert len(_SEEN["out"]) == 4  # the first call's records, then nothing


@settings(max_examples=8, deadline=None)
@given(total=st.integers(0, 60), per_call=st.integers(1, 25))
def test_ours_resumes_every_deferred_remainder_exactly_once(total: int, per_call: int) -> None:
    _run(LocalStreamingRunner(), _counted(total, per_call))
    assert sorted(n for _, n in _SEEN.get("out", [])) == list(range(total))


# Defect 4: the watermark jumps past a read's records before its first call.


def _windowed(p: beam.Pipeline) -> None:
    _ = (
        p
        | beam.Create(["a"])
        | beam.ParDo(_Count(12, 3, as_generator=False))
        | beam.WindowInto(FixedWindows(4))
        | beam.Map(lambda kv: (kv[0], 1))
        | beam.CombinePerKey(sum)
        | beam.ParDo(_Collect("windows"))
    )


def test_beam_still_drops_every_windowed_record_of_a_read_as_late() -> None:
    _run(_BeamWithOrderFixed(), _windowed)
    assert _SEEN.get("windows", []) == []


def test_ours_fires_every_window_of_a_read() -> None:
    _run(LocalStreamingRunner(), _windowed)
    assert sorted(_SEEN["windows"]) == [("a", 4), ("a", 4), ("a", 4)]


# Defect 5: counters of a step's bundles after its first one are lost.


def _batched(p: beam.Pipeline) -> None:
    _ = (
        p
        | beam.Create([("k", n) for n in range(5)])
        | BatchByKey(2, 60.0)
        | beam.ParDo(_Collect("batches"))
    )


def _batches_counted(result: Any) -> int:
    counters = result.metrics().query(beam.metrics.MetricsFilter().with_name("batches"))
    return sum(c.committed for c in counters["counters"])


def test_beam_still_loses_the_counters_of_later_bundles() -> None:
    result = _run(BundleBasedDirectRunner(), _batched)
    assert len(_SEEN["batches"]) == 3
    assert _batches_counted(result) < 3


def test_ours_counts_every_bundle() -> None:
    result = _run(LocalStreamingRunner(), _batched)
    assert _batches_counted(result) == len(_SEEN["batches"]) == 3


# A stop request ends an endless read; the run then finishes.


class _Endless(beam.DoFn):
    def process(
        self,
        element: str,
        tracker: Any = beam.DoFn.RestrictionParam(_Span(1 << 62)),
    ) -> Iterator[int]:
        from transforms.stop import stop_requested

        position = tracker.current_restriction().start
        if stop_requested():
            tracker.try_claim(tracker.current_restriction().stop)
            return
        if tracker.try_claim(position):
            yield position
        tracker.defer_remainder(Duration(seconds=0.05))


def test_a_stop_request_ends_an_endless_read_and_the_run() -> None:
    clear_stop()
    _SEEN.clear()
    pipeline = beam.Pipeline(runner=LocalStreamingRunner(), options=_streaming())
    _ = pipeline | beam.Create(["a"]) | beam.ParDo(_Endless()) | beam.ParDo(_Collect("endless"))
    result = pipeline.run()
    deadline = time.monotonic() + 60
    while len(_SEEN.get("endless", [])) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    request_stop()
    try:
        finish_within(result, 120)
    finally:
        clear_stop()
    assert _SEEN["endless"][:3] == [0, 1, 2]
    assert sorted(_SEEN["endless"]) == list(range(len(_SEEN["endless"])))


def test_ours_resumes_a_read_whose_input_is_in_a_window_of_its_own() -> None:
    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | beam.Create([TimestampedValue("a", 5)])
            | beam.WindowInto(FixedWindows(100))
            | beam.ParDo(_Count(7, 3))
            | beam.ParDo(_Collect("windowed_input"))
        )

    _run(LocalStreamingRunner(), build)
    assert sorted(n for _, n in _SEEN["windowed_input"]) == list(range(7))
