"""A local Beam job service whose streaming jobs fire their timers: ``dataplane job-service``.

PortableRunner jobs sent to Beam's own local job service
(``python -m apache_beam.runners.portability.local_job_service_main``) run on the
FnApiRunner, the Fn API path Flink and Dataflow Runner v2 take. In Beam 2.77 that
runner is built for batch, and a streaming read starves everything after it:

1. **Data reaches another stage only once its producer is done**, and pending
   timers are scheduled only once no other bundle is ready; a streaming read
   always has its next call ready, so a step in a stage of its own (a sink behind
   a Flatten, like the dead-letter table's) sees nothing while the read runs.
2. **A stage's watermark comes from its producers alone.** A read's stage (and
   the stateful steps fused into it) takes the end of its bounded seed input as
   its watermark, so event-time timers there fire at once, windows too early;
   the read's own watermark, reported with each deferred call, is ignored.
3. **Processing-time timers are due at their hold** (the element's event time),
   not at their firing time: they fire at once, so batches never wait.
4. **A Reshuffle after a streaming step holds its data for good**: it is a
   GroupByKey, which here hands on data only when its input ends.

:class:`StreamingFnApiRunner` hands data on after every bundle (GroupByKey
buffers excepted), schedules due timers after every bundle, holds a read's stage
at the watermark its residuals report and passes each stage's output watermark
on, schedules processing-time timers at their firing time and waits for them, and
runs Reshuffles as pass-throughs.
GroupByKey keeps the FnApiRunner's batch semantics (it fires at the end of the
input), so a streaming job with Beam's own windowed GroupByKey needs the local
streaming runner or a real one; our sinks and WindowedAggregate use state and
timers only. ``tests/unit/test_job_service.py`` has a test per defect that fails
once a Beam release fixes or moves it.

:class:`LocalJobService` starts this job service (or Beam's own) as a process on a
free loopback port, for the tests and benchmarks.

Run it, then point PortableRunner at it::

    dataplane job-service --port 8099
    python -m beam_pipelines.sentiment --runner=portable --job_endpoint=localhost:8099 \\
        --environment_type=LOOPBACK --source=kafka://127.0.0.1:9092/tweets ...
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Any

from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability import local_job_service
from apache_beam.runners.portability.fn_api_runner import execution, fn_runner
from apache_beam.utils import timestamp

from runners.local.process import LocalService

__all__ = ["LocalJobService", "StreamingBeamJob", "StreamingFnApiRunner", "serve"]

_PENDING_POLL_S = 0.05


class StreamingFnApiRunner(fn_runner.FnApiRunner):
    """Beam's FnApiRunner with the streaming defects above worked around."""

    def run_via_runner_api(self, pipeline_proto: Any, options: Any = None) -> Any:
        return super().run_via_runner_api(_without_reshuffles(pipeline_proto), options)

    def _execute_bundle(self, context: Any, bundle_manager: Any, bundle_input: Any) -> Any:
        result = super()._execute_bundle(context, bundle_manager, bundle_input)
        _forward_data_now(context)  # defect 1
        self._pass_watermarks_on(context, bundle_manager)  # defect 2
        self._schedule_ready_bundles(context)  # defect 1
        while not len(context.queues.ready_inputs) and len(context.queues.time_pending_inputs):
            time.sleep(_PENDING_POLL_S)  # timers now wait for their time (defect 3)
            self._schedule_ready_bundles(context)
        return result

    def _run_bundle(  # type: ignore[override]
        self,
        context: Any,
        bundle_manager: Any,
        bundle_input: Any,
        data_output: Any,
        expected_timer_output: Any,
        runner_bundle_manager: Any,
    ) -> Any:
        self._residual_holds: dict[str, timestamp.Timestamp] = {}
        result, deferred, timers, updates = super()._run_bundle(
            context,
            bundle_manager,
            bundle_input,
            data_output,
            expected_timer_output,
            runner_bundle_manager,
        )
        for pcoll, hold in self._residual_holds.items():
            if updates.get(pcoll) == timestamp.MIN_TIMESTAMP:
                updates[pcoll] = hold  # defect 2: the read's own watermark, not -infinity
            _hold_stage_input(context.watermark_manager, bundle_manager.stage.name, pcoll)
        return result, deferred, timers, updates

    def _add_sdk_delayed_applications_to_deferred_inputs(
        self, bundle_manager: Any, bundle_result: Any, deferred_inputs: Any
    ) -> set[str]:
        held = super()._add_sdk_delayed_applications_to_deferred_inputs(
            bundle_manager, bundle_result, deferred_inputs
        )
        residuals = bundle_result.process_bundle.residual_roots
        marks = [
            min(
                (timestamp.Timestamp.from_proto(m) for m in marks.values()),
                default=timestamp.MIN_TIMESTAMP,  # no watermark yet: hold everything
            )
            for marks in (r.application.output_watermarks for r in residuals)
        ]
        if marks and len(held) == 1:
            self._residual_holds[next(iter(held))] = min(marks)
        return held

    def _enqueue_set_timers(
        self, context: Any, bundle_manager: Any, fired_timers: Any, previous_input: Any
    ) -> None:
        domains = bundle_manager.stage_timer_outputs
        due = {
            family: (timers, _fire_time(bundle_manager, family, timers))
            if domains[family][1] == beam_runner_api_pb2.TimeDomain.PROCESSING_TIME
            else (timers, target)
            for family, (timers, target) in fired_timers.items()
        }
        super()._enqueue_set_timers(context, bundle_manager, due, previous_input)

    @staticmethod
    def _pass_watermarks_on(context: Any, bundle_manager: Any) -> None:
        manager = context.watermark_manager
        stage = manager.get_stage_node(bundle_manager.stage.name)
        mark = stage.output_watermark()
        for output in stage.outputs:
            if output.upstream_watermark() < mark:
                output.set_produced_watermark(mark)


def _without_reshuffles(proto: beam_runner_api_pb2.Pipeline) -> beam_runner_api_pb2.Pipeline:
    """The pipeline with each Reshuffle made a pass-through (defect 4).

    A Reshuffle is a GroupByKey underneath, so here it would hold everything after
    a streaming read (partitions found while the read runs, say) until the input
    ends. It only redistributes work, which one local worker has no use for.
    """
    proto = copy.deepcopy(proto)
    transforms = proto.components.transforms
    reshuffles = [
        tid for tid, t in transforms.items() if t.spec.urn == common_urns.composites.RESHUFFLE.urn
    ]
    for tid in reshuffles:
        (source,), (target,) = transforms[tid].inputs.values(), transforms[tid].outputs.values()
        doomed = _descendants(transforms, tid)
        for other_id, other in transforms.items():
            if other_id in doomed:
                continue
            for mapping in (other.inputs, other.outputs):
                for tag, pcoll in list(mapping.items()):
                    if pcoll == target:
                        mapping[tag] = source
            if tid in other.subtransforms:
                other.subtransforms.remove(tid)
        if tid in proto.root_transform_ids:
            proto.root_transform_ids.remove(tid)
        for gone in doomed:
            for pcoll in transforms[gone].outputs.values():
                proto.components.pcollections.pop(pcoll, None)
            del transforms[gone]
    return proto


def _descendants(transforms: Any, tid: str) -> set[str]:
    found, stack = set(), [tid]
    while stack:
        current = stack.pop()
        found.add(current)
        stack.extend(transforms[current].subtransforms)
    return found


def _fire_time(bundle_manager: Any, family: Any, timers: Any) -> timestamp.Timestamp:
    """The earliest firing time of processing-time timers (defect 3: not their hold)."""
    coder = bundle_manager.get_timer_coder_impl(*family)
    return min(
        (timer.fire_timestamp for chunk in timers for timer in coder.decode_all(chunk)),
        default=timestamp.MAX_TIMESTAMP,
    )


def _hold_stage_input(manager: Any, stage_name: str, pcoll: str) -> None:
    """Makes the stage's input watermark respect the read's hold on ``pcoll`` (defect 2).

    The FnApiRunner takes a stage's input watermark from its producers alone, so a
    read's stage (and the stateful steps fused into it) saw the end of its bounded
    seed input as its watermark and fired every event-time timer at once.
    """
    node = manager.get_stage_node(stage_name)
    if getattr(node, "_dataplane_held", None) is not None:
        node._dataplane_held.add(pcoll)
        return
    upstream, held = node.input_watermark, {pcoll}
    node._dataplane_held = held
    node.input_watermark = lambda: min(
        [upstream(), *(manager.get_pcoll_node(name).watermark() for name in held)]
    )


def _forward_data_now(context: Any) -> None:
    """Makes the data a bundle produced ready for its consumers now, not at the input's end.

    Grouping buffers (GroupByKey) keep waiting for the end: their groups are whole
    only then in this runner; so do stages with side inputs, which are complete only
    then too.
    """
    pending = context.queues.watermark_pending_inputs
    kept = []
    while len(pending):
        (stage, mark), data_input = pending.deque()
        plain = all(isinstance(b, execution.ListBuffer) for b in data_input.data.values())
        sided = any(True for _ in context.stages[stage].side_inputs())
        if mark == timestamp.MAX_TIMESTAMP and plain and not sided and not data_input.timers:
            context.queues.ready_inputs.enque((stage, data_input))
        else:
            kept.append(((stage, mark), data_input))
    for entry in kept:
        pending.enque(entry)


class StreamingBeamJob(local_job_service.BeamJob):
    """A job of the local job service, run on :class:`StreamingFnApiRunner`."""

    def _invoke_runner(self) -> Any:
        from apache_beam.portability.api import beam_job_api_pb2

        self.set_state(beam_job_api_pb2.JobState.RUNNING)
        runner = StreamingFnApiRunner(provision_info=self._provision_info)
        return runner.run_via_runner_api(self._pipeline_proto, self.pipeline_options())


def serve(port: int) -> None:
    """Serves the Beam Job API on 127.0.0.1:``port`` (0: a free one) until interrupted."""
    servicer = local_job_service.LocalJobServicer(beam_job_type=StreamingBeamJob)
    bound = servicer.start_grpc_server(port)
    print(f"Beam job service at localhost:{bound}; Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        servicer.stop()


class LocalJobService(LocalService):
    """Beam's Python job service, the Fn API path Flink and Dataflow Runner v2 also take.

    Run pipelines on it with ``--runner=PortableRunner --job_endpoint=<endpoint>
    --environment_type=LOOPBACK``. ``streaming=True`` starts ours instead
    (``dataplane job-service``, :func:`serve`), whose streaming jobs fire their
    timers.

    Example:
        >>> with LocalJobService() as jobs:
        ...     jobs.endpoint.startswith("localhost:")
        True
    """

    name = "Beam job service"

    def __init__(self, *, streaming: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._streaming = streaming

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    def command(self) -> list[str]:
        if self._streaming:  # ours: timers and watermarks work while a read streams
            return [sys.executable, "-m", "runners.cli", "job-service", f"--port={self.port}"]
        return [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            f"--port={self.port}",
        ]

    def __enter__(self) -> LocalJobService:
        self.start()
        return self
