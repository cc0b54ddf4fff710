"""LocalStreamingRunner: one test per Beam defect it works around, each against Beam's own runner.

Each ``test_beam_still_*`` runs Beam's streaming direct runner on a small pipeline
and expects the defect. When a Beam upgrade fixes or moves one, that test fails:
the matching workaround in ``beam_pipelines/launch/local_streaming.py`` is then due for review.
The ``test_ours_*`` beside it runs the same pipeline on our runner.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.metrics.execution import MetricsContainer
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.direct import direct_runner
from apache_beam.runners.direct import executor as direct_executor
from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner
from apache_beam.runners.direct.evaluation_context import DirectUnmergedState
from apache_beam.runners.direct.watermark_manager import _TransformWatermarks
from apache_beam.runners.worker import statesampler
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.window import FixedWindows, GlobalWindow, TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_pipelines.launch.local_streaming import (
    BEAM_REFRESH_WATERMARK,
    BEAM_SERIAL_EVALUATION_STATE,
    MAX_BYTES_PER_CALL,
    MAX_IN_FLIGHT_BYTES,
    MAX_PER_CALL,
    LocalStreamingRunner,
    _FifoSerialEvaluationState,
    _refresh_watermark,
    reads_must_wait,
)
from tests.helpers import finish_within
from transforms.sinks.batching import BatchByKey, BatchPolicy
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
        | BatchByKey(BatchPolicy(2, 60.0), name="batch")
        | beam.ParDo(_Collect("batches"))
    )


def _batches_counted(result: Any) -> int:
    counters = result.metrics().query(beam.metrics.MetricsFilter().with_name("batches"))
    return sum(c.committed for c in counters["counters"])


def test_beam_still_loses_the_counters_of_later_bundles(monkeypatch: pytest.MonkeyPatch) -> None:
    # Our runner replaces the executor's container for the whole process; undo it here.
    monkeypatch.setattr(direct_executor, "MetricsContainer", MetricsContainer)
    result = _run(BundleBasedDirectRunner(), _batched)
    assert len(_SEEN["batches"]) == 3
    assert _batches_counted(result) < 3


def test_ours_counts_every_bundle() -> None:
    result = _run(LocalStreamingRunner(), _batched)
    assert _batches_counted(result) == len(_SEEN["batches"]) == 3


class _StateIndex(beam.DoFn):
    """Notes the index of the worker thread's scoped state this bundle runs in."""

    def process(self, element: Any) -> None:
        state = statesampler.get_current_tracker().current_state()
        with _LOCK:
            _SEEN.setdefault("state", []).append((threading.get_ident(), state.state_index))


def test_ours_makes_no_new_scoped_state_per_bundle() -> None:
    # The sampler keeps every scoped state it makes: one made per bundle is a leak.
    _run(
        LocalStreamingRunner(),
        lambda p: p | beam.Create(["a"]) | beam.ParDo(_Count(6, 1)) | beam.ParDo(_StateIndex()),
    )
    per_thread: dict[int, set[int]] = {}
    for thread, index in _SEEN["state"]:
        per_thread.setdefault(thread, set()).add(index)
    assert len(_SEEN["state"]) == 6  # one per call of the read, so one per bundle
    assert all(len(indexes) == 1 for indexes in per_thread.values()), per_thread


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


# Defect 6: Beam's streaming Pub/Sub read. A stand-in subscriber client serves the
# messages (no emulator needed); it records every pull and acknowledgement.

_PUBSUB_SUBSCRIPTION = "projects/test-project/subscriptions/fake"
_EPOCH_2000 = datetime(2000, 1, 1, tzinfo=timezone.utc)


class _FakeSubscriber:
    """Stands in for ``google.cloud.pubsub.SubscriberClient``: serves ``backlog``, logs calls."""

    backlog: list[Any] = []
    per_pull = 10
    log: list[tuple[str, Any]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    @staticmethod
    def subscription_path(project: str, name: str) -> str:
        return f"projects/{project}/subscriptions/{name}"

    def pull(self, *, subscription: str, max_messages: int, timeout: float, **_: Any) -> Any:
        with _LOCK:
            count = min(max_messages, self.per_pull)
            served, _FakeSubscriber.backlog = self.backlog[:count], self.backlog[count:]
            self.log.append(("pull", (timeout, len(served))))
        if not served:
            time.sleep(0.01)
        return SimpleNamespace(
            received_messages=[SimpleNamespace(ack_id=m.message_id, message=m) for m in served]
        )

    def acknowledge(self, *, subscription: str, ack_ids: list[str]) -> None:
        with _LOCK:
            self.log.append(("ack", list(ack_ids)))

    def close(self) -> None:
        pass


def _message(n: int, **attributes: str) -> Any:
    return SimpleNamespace(
        data=f"m{n}".encode(),
        attributes=attributes,
        message_id=str(n),
        publish_time=_EPOCH_2000 + timedelta(seconds=n),
        ordering_key="",
    )


@pytest.fixture
def fake_pubsub(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_FakeSubscriber]]:
    from google.cloud import pubsub

    monkeypatch.setattr(pubsub, "SubscriberClient", _FakeSubscriber)
    _FakeSubscriber.backlog, _FakeSubscriber.per_pull, _FakeSubscriber.log = [], 10, []
    clear_stop()
    _SEEN.clear()
    yield _FakeSubscriber
    clear_stop()


class _CollectData(beam.DoFn):
    def process(self, message: Any) -> None:
        with _LOCK:
            _SEEN.setdefault("pubsub", []).append(message.data)
            _FakeSubscriber.log.append(("seen", message.data))


def _start_pubsub(runner: Any, *, windowed: bool = False, id_label: str | None = None) -> Any:
    pipeline = beam.Pipeline(runner=runner, options=_streaming())
    messages = pipeline | beam.io.ReadFromPubSub(
        subscription=_PUBSUB_SUBSCRIPTION, with_attributes=True, id_label=id_label
    )
    if windowed:
        _ = (
            messages
            | beam.Map(lambda m: ("k", 1))
            | beam.WindowInto(FixedWindows(60))
            | beam.CombinePerKey(sum)
            | beam.ParDo(_Collect("windows"))
        )
    else:
        _ = messages | beam.ParDo(_CollectData())
    return pipeline.run()


def _pulls(fake: type[_FakeSubscriber]) -> list[tuple[float, int]]:
    with _LOCK:
        return [detail for kind, detail in fake.log if kind == "pull"]


def _wait_until(condition: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the condition was not met in time"
        time.sleep(0.02)


def _idle_after_backlog(fake: type[_FakeSubscriber], empty_pulls: int = 3) -> bool:
    """Whether the backlog is served and the read came back empty ``empty_pulls`` times since.

    The runner has one worker and pulls only when nothing else is left to run, so by
    then everything pulled has gone through the pipeline.
    """
    pulls = _pulls(fake)
    return (
        not fake.backlog
        and len(pulls) >= empty_pulls
        and all(served == 0 for _, served in pulls[-empty_pulls:])
    )


def test_beam_still_pulls_pubsub_for_30s_and_acks_before_handing_on(fake_pubsub: Any) -> None:
    fake_pubsub.backlog = [_message(n) for n in range(3)]
    result = _start_pubsub(BundleBasedDirectRunner())
    try:
        _wait_until(lambda: len(_SEEN.get("pubsub", [])) == 3)
    finally:
        result.cancel()
    assert {timeout for timeout, _ in _pulls(fake_pubsub)} == {30}
    kinds = [kind for kind, _ in fake_pubsub.log if kind != "pull"]
    assert kinds[:2] == ["ack", "seen"]  # acknowledged before anything downstream ran


def test_ours_pulls_briefly_and_acks_when_it_pulls(fake_pubsub: Any) -> None:
    from beam_pipelines.launch.local_streaming import PUBSUB_PULL_WAIT_S

    fake_pubsub.backlog = [_message(n) for n in range(3)]
    result = _start_pubsub(LocalStreamingRunner())
    _wait_until(lambda: len(_SEEN.get("pubsub", [])) == 3)
    request_stop()
    finish_within(result, 30)
    assert {timeout for timeout, _ in _pulls(fake_pubsub)} == {PUBSUB_PULL_WAIT_S}
    kinds = [kind for kind, _ in fake_pubsub.log if kind != "pull"]
    assert kinds[:2] == ["ack", "seen"]  # the guarantee documented: acknowledged when pulled


def test_beam_still_reads_pubsub_after_a_stop(fake_pubsub: Any) -> None:
    result = _start_pubsub(BundleBasedDirectRunner())
    try:
        _wait_until(lambda: len(_pulls(fake_pubsub)) >= 1)
        request_stop()
        stopped_at = len(_pulls(fake_pubsub))
        _wait_until(lambda: len(_pulls(fake_pubsub)) >= stopped_at + 5)
        assert result.state == beam.runners.runner.PipelineState.RUNNING
    finally:
        result.cancel()


def test_ours_ends_a_pubsub_read_on_a_stop(fake_pubsub: Any) -> None:
    fake_pubsub.backlog = [_message(n) for n in range(4)]
    result = _start_pubsub(LocalStreamingRunner())
    _wait_until(lambda: _idle_after_backlog(fake_pubsub, 1))
    request_stop()
    finish_within(result, 30)
    assert sorted(_SEEN["pubsub"]) == [f"m{n}".encode() for n in range(4)]


def test_beam_still_drops_a_pubsub_backlog_as_late(fake_pubsub: Any) -> None:
    fake_pubsub.backlog = [_message(n) for n in range(25)]  # one minute's window, 10 per pull
    result = _start_pubsub(BundleBasedDirectRunner(), windowed=True)
    try:
        _wait_until(lambda: _idle_after_backlog(fake_pubsub))
    finally:
        result.cancel()
    assert sum(n for _, n in _SEEN.get("windows", [])) < 25


def test_ours_counts_a_pubsub_backlog_in_its_window(fake_pubsub: Any) -> None:
    fake_pubsub.backlog = [_message(n) for n in range(25)]
    result = _start_pubsub(LocalStreamingRunner(), windowed=True)
    _wait_until(lambda: _idle_after_backlog(fake_pubsub))
    request_stop()
    finish_within(result, 30)
    assert _SEEN["windows"] == [("k", 25)]


def test_beam_still_refuses_id_label(fake_pubsub: Any) -> None:
    result = _start_pubsub(BundleBasedDirectRunner(), id_label="uid")
    with pytest.raises(NotImplementedError, match="id_label is not supported"):
        finish_within(result, 30)


def test_ours_drops_repeats_of_an_id_label(fake_pubsub: Any) -> None:
    uids = ["a", "b", "a", "c", "b", "a"]
    fake_pubsub.backlog = [_message(n, uid=uid) for n, uid in enumerate(uids)]
    fake_pubsub.per_pull = 2  # repeats across pulls as well as within one
    result = _start_pubsub(LocalStreamingRunner(), id_label="uid")
    _wait_until(lambda: _idle_after_backlog(fake_pubsub, 1))
    request_stop()
    finish_within(result, 30)
    assert sorted(_SEEN["pubsub"]) == [b"m0", b"m1", b"m3"]


# Defect 7: stateful steps swamped by empty bundles, stale timer firings and a newest-first queue.


class _DropAll(beam.DoFn):
    def process(self, element: Any) -> Iterator[Any]:
        return iter(())


class _CountBundles(beam.DoFn):
    def start_bundle(self) -> None:
        Metrics.counter("test", "bundles").inc()

    def process(self, element: Any) -> None:
        pass


def _bundles_after_an_empty_step(runner: Any) -> int:
    def build(p: beam.Pipeline) -> None:
        _ = p | beam.Create([1, 2, 3]) | beam.ParDo(_DropAll()) | beam.ParDo(_CountBundles())

    result = _run(runner, build)
    counters = result.metrics().query(beam.metrics.MetricsFilter().with_name("bundles"))
    return sum(c.committed for c in counters["counters"])


def test_beam_still_hands_on_empty_bundles() -> None:
    assert _bundles_after_an_empty_step(BundleBasedDirectRunner()) >= 1


def test_ours_hands_on_no_empty_bundle() -> None:
    assert _bundles_after_an_empty_step(LocalStreamingRunner()) == 0


class _Service:
    """An executor service that only records what it was given to run."""

    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, work: str) -> None:
        self.submitted.append(work)


@pytest.mark.parametrize(
    ("queue", "runs_next"),
    [(BEAM_SERIAL_EVALUATION_STATE, "c"), (_FifoSerialEvaluationState, "b")],
    ids=["beam-newest-first", "ours-first-in-first-out"],
)
def test_a_stateful_steps_queue_order(queue: Any, runs_next: str) -> None:
    service = _Service()
    state = queue(service, set())
    for work in "abc":
        state.schedule(work)
    state.complete("a")
    assert service.submitted == ["a", runs_next]


def test_beam_still_hands_out_a_due_timer_again_until_its_firing_ran() -> None:
    keyed = DirectUnmergedState()
    keyed.set_timer(GlobalWindow(), "user/t", TimeDomain.REAL_TIME, Timestamp(1))
    clock = SimpleNamespace(time=lambda: Timestamp(2))
    watermarks = _TransformWatermarks(clock, {b"k": keyed}, None)
    first, _ = watermarks.extract_transform_timers()
    again, _ = watermarks.extract_transform_timers()
    assert len(first) == len(again) == 1  # our evaluator skips the stale second firing


# Defect 8: every watermark refresh read every element of every bundle waiting for the step.


class _WaitingBundle:
    """A committed bundle that counts how often its elements are read."""

    def __init__(self, timestamps: list[int], value: Any = None) -> None:
        self._entries = [WindowedValue(value, Timestamp(t), (GlobalWindow(),)) for t in timestamps]
        self._committed = True
        self.reads = 0

    @property
    def _elements(self) -> list[Any]:
        self.reads += 1
        return self._entries

    def get_elements_iterable(self) -> list[Any]:
        return self._elements


def _watermarks(bundles: list[_WaitingBundle], upstream: int | None = None) -> Any:
    watermarks = _TransformWatermarks(SimpleNamespace(time=Timestamp.now), {}, None)
    inputs = [] if upstream is None else [SimpleNamespace(output_watermark=Timestamp(upstream))]
    watermarks.update_input_transform_watermarks(inputs)
    for bundle in bundles:
        watermarks.add_pending(bundle)
    return watermarks


@pytest.mark.parametrize(
    ("refresh", "reads"),
    [(BEAM_REFRESH_WATERMARK, 3), (_refresh_watermark, 1)],
    ids=["beam", "ours"],
)
def test_reads_of_a_waiting_bundle_over_three_refreshes(refresh: Any, reads: int) -> None:
    bundle = _WaitingBundle([7, 5, 9])
    watermarks = _watermarks([bundle], upstream=100)
    for _ in range(3):
        refresh(watermarks)
    assert bundle.reads == reads
    assert watermarks.input_watermark == Timestamp(5) - Duration(micros=1)


@given(
    bundles=st.lists(st.lists(st.integers(0, 10**6), max_size=5), max_size=4),
    upstream=st.none() | st.integers(0, 10**6),
    holds=st.dictionaries(st.text(max_size=2), st.integers(0, 10**6), max_size=3),
)
@settings(max_examples=200, deadline=None)
def test_our_refresh_moves_watermarks_as_beams_does(
    bundles: list[list[int]], upstream: int | None, holds: dict[str, int]
) -> None:
    beam_side = _watermarks([_WaitingBundle(b) for b in bundles], upstream)
    ours = _watermarks([_WaitingBundle(b) for b in bundles], upstream)
    for side in (beam_side, ours):
        side.hold({k: Timestamp(v) for k, v in holds.items()})
    for _ in range(2):
        assert BEAM_REFRESH_WATERMARK(beam_side) == _refresh_watermark(ours)
        assert beam_side.input_watermark == ours.input_watermark
        assert beam_side.output_watermark == ours.output_watermark


# Defect 9: no backpressure; a call of a read took all it could get.


class _CountingCalls(_Count):
    def _call(self, element: str, tracker: Any, watermark: Any) -> Iterator[Any]:
        with _LOCK:
            _SEEN.setdefault("call starts", []).append(tracker.current_restriction().start)
        yield from super()._call(element, tracker, watermark)


def test_ours_checkpoints_a_call_after_max_per_call_outputs() -> None:
    total = 3 * MAX_PER_CALL + 7

    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | beam.Create(["a"])
            | beam.ParDo(_CountingCalls(total, per_call=total))  # would take all in one call
            | beam.ParDo(_Collect("out"))
        )

    _run(LocalStreamingRunner(), build)
    assert sorted(n for _, n in _SEEN["out"]) == list(range(total))
    starts = _SEEN["call starts"]
    assert len(starts) >= 4
    assert all(b - a <= MAX_PER_CALL for a, b in itertools.pairwise(starts))


class _LargeCalls(_CountingCalls):
    """Outputs rows of 1 MiB each, all in one call unless the runner checkpoints it."""

    def _call(self, element: str, tracker: Any, watermark: Any) -> Iterator[Any]:
        for value in super()._call(element, tracker, watermark):
            _, position = value.value
            yield TimestampedValue({"n": position, "blob": b"x" * (1 << 20)}, value.timestamp)


class _Note(beam.DoFn):
    def process(self, row: dict) -> None:
        with _LOCK:
            _SEEN.setdefault("out", []).append(row["n"])


def test_ours_checkpoints_a_call_after_max_bytes_per_call() -> None:
    per_call_rows = MAX_BYTES_PER_CALL >> 20
    total = 3 * per_call_rows + 2

    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | beam.Create(["a"])
            | beam.ParDo(_LargeCalls(total, per_call=total))  # would take all in one call
            | beam.ParDo(_Note())
        )

    _run(LocalStreamingRunner(), build)
    assert sorted(_SEEN["out"]) == list(range(total))
    starts = _SEEN["call starts"]
    assert len(starts) >= 4
    assert all(b - a <= per_call_rows for a, b in itertools.pairwise(starts))


def test_reads_wait_while_the_bytes_between_steps_are_over_the_bound() -> None:
    row = {"blob": b"x" * (1 << 20)}
    rows_over = (MAX_IN_FLIGHT_BYTES >> 20) + 1
    for count, wait in ((rows_over, True), (4, False)):
        step = _watermarks([_WaitingBundle([1] * count, value=row)])
        assert reads_must_wait(SimpleNamespace(_transform_to_watermarks={"step": step})) is wait
