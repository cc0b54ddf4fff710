"""What every pipeline module's ``run`` and ``main`` share: flags → runner → run → summary.

A streaming run (an unbounded source) goes on until it is stopped: the first
Ctrl-C or SIGTERM asks the sources to stop (see :mod:`transforms.stop`), the
batches in flight are committed, the summary is printed and the exit code is 0;
a second one ends the process at once (exit 130; a restart still loses and
doubles nothing, the tables are the checkpoint).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions

from beam_pipelines.launch.flags import checked_flags, known_flags
from beam_pipelines.launch.interrupts import FORCED_EXIT as _FORCED_EXIT
from beam_pipelines.launch.lineage_config import lineage_wanted
from beam_pipelines.launch.metrics_http import serve_metrics
from beam_pipelines.launch.options import (
    DeltaSinkOptions,
    RunOptions,
    SourceOptions,
    check_outputs,
    help_requested,
    kafka_settings,
    metrics_port,
    print_help,
    shield_argv,
    storage_options_from,
)
from beam_pipelines.launch.presets import resolve_runner, runs_in_this_process
from beam_pipelines.launch.profiles import expand_profile
from schemas.errors import ConfigError, DataplaneError, SourceUnavailableError
from schemas.secrets import Shipment
from transforms.gc_tuning import freeze_heap_once
from transforms.progress import LOCAL, LOCAL_GAUGES
from transforms.sources.preflight import wait_for_source
from transforms.sources.uri import is_unbounded
from transforms.stop import clear_stop, request_stop, stop_requested

if TYPE_CHECKING:
    from beam_pipelines.launch.lineage import RunLineage

__all__ = ["Launched", "command_line", "discarded_unless_run", "run_pipeline"]

Build = Callable[[beam.Pipeline, PipelineOptions], Any]


class Launched:
    """A run handed to a remote runner and not waited for (dry run, or no wait)."""

    def __init__(self, runner: str, message: str) -> None:
        self.runner, self.message = runner, message

    def print(self) -> None:
        print(self.message)


def run_pipeline(
    build: Build,
    argv: Sequence[str] | None,
    *,
    show_progress: bool,
    outputs: Mapping[str, bool] | None = None,
) -> Any:
    """Builds the pipeline from flags (profile expanded), runs it, returns the run summary.

    ``outputs`` names the output flags (without ``--``) and whether each is a Delta
    table; local ones are checked before anything starts. Secret values given in
    the flags never reach the runner's options (see
    :func:`~beam_pipelines.launch.options.shield_argv`); workers get them as
    :func:`_ship_secrets` says.

    Returns a :class:`Launched` instead when the runner was not waited for
    (``--dry_run=True`` or ``--no_wait_until_finish``).
    """
    with Shipment() as shipment:
        return _run(build, argv, show_progress=show_progress, outputs=outputs, shipment=shipment)


def _run(
    build: Build,
    argv: Sequence[str] | None,
    *,
    show_progress: bool,
    outputs: Mapping[str, bool] | None,
    shipment: Shipment,
) -> Any:
    from beam_pipelines.launch.summary import RunSummary, progress_display

    options = PipelineOptions(shield_argv(checked_flags(expand_profile(argv))))
    source = options.view_as(SourceOptions)
    run = options.view_as(RunOptions)
    streaming = bool(source.source) and is_unbounded(
        source.source, bounded=source.bounded, max_records=source.max_records
    )
    runner = resolve_runner(options, bounded=not streaming)
    check_outputs(options, outputs or {})
    port = metrics_port(options)
    client = None
    if lineage_wanted(run.lineage):  # else openlineage (0.3 s to import) is not imported
        from beam_pipelines.launch.lineage import lineage_client

        client = lineage_client(run.lineage)
    every = options.get_all_options()
    dry_run, wait = bool(every.get("dry_run")), not every.get("no_wait_until_finish")
    if source.source and not dry_run and source.source_timeout_s > 0:
        wait_for_source(
            source.source,
            timeout_s=source.source_timeout_s,
            consumer_config=kafka_settings(source),
        )
    local = runs_in_this_process(runner, options)
    if not wait and local:
        raise ConfigError(
            "--no_wait_until_finish",
            "this run's workers live in this process and would end with it; "
            "use it with a remote runner (flink, dataflow, portable without LOOPBACK)",
        )
    if port is not None and not local:
        raise ConfigError(
            "--metrics_port",
            "this run's workers are not in this process, so their counts are not here; "
            "the runner exports the job's Beam metrics itself (Dataflow: Cloud Monitoring, "
            "Flink: its metrics reporters)",
        )
    pipeline = beam.Pipeline(runner=runner, options=options)
    with discarded_unless_run(pipeline) as run_it:
        build(pipeline, options)
        if dry_run and not _runner_dry_runs(runner):
            return _launched(pipeline, None, dry_run=True)  # built, never run
        if stop_requested():  # Ctrl-C while it started (see beam_pipelines.launch.interrupts)
            clear_stop()
            raise KeyboardInterrupt
        freeze_heap_once()  # the imports and the built pipeline: see transforms.gc_tuning
        run_it()
    LOCAL_GAUGES.clear()  # lags and watermarks of an earlier run in this process
    LOCAL.clear_gauges()
    started = time.monotonic()
    sink = options.view_as(DeltaSinkOptions)
    lineage = None
    if client is not None and not dry_run:
        from beam_pipelines.launch.lineage import plan_lineage

        lineage = plan_lineage(
            client,
            options,
            pipeline,
            job_name=_pipeline_name(build),
            streaming=streaming,
            outputs=outputs or {},
        )
    try:
        with (
            serve_metrics(port, address=run.metrics_address),
            _ship_secrets(shipment, pipeline.options, local=local),
            _stop_on_signals(local=local),
            progress_display(
                terminal=show_progress,
                log_every_s=run.progress_interval_s if streaming and local else None,
                tables={"output": sink.output, "dead letters": sink.dlq},
            ),
            _lineage_events(lineage, every_s=run.lineage_interval_s if streaming else 0),
        ):
            result = pipeline.run()
            if dry_run or not wait:
                return _launched(pipeline, result, dry_run=dry_run)
            result.wait_until_finish()
        stopped = stop_requested()
    finally:
        clear_stop()  # a later run in this process starts unstopped
    summary = RunSummary.collect(
        result,
        output=sink.output,
        dlq=sink.dlq,
        elapsed_s=time.monotonic() - started,
        storage_options=storage_options_from(options),
        stopped=stopped,
    )
    if lineage is not None:
        lineage.complete()
    return summary


def _pipeline_name(build: Build) -> str:
    """``sentiment`` for ``beam_pipelines.sentiment.build``, also when run as ``-m``."""
    module = build.__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else "pipeline"
    return module.rpartition(".")[2]


@contextlib.contextmanager
def _lineage_events(lineage: RunLineage | None, *, every_s: float) -> Iterator[None]:
    """START before the block, RUNNING every ``every_s`` (0: none) during it, FAIL (or
    ABORT) when it raises; the caller sends COMPLETE with the run's counts."""
    if lineage is None:
        yield
        return
    from beam_pipelines.launch.lineage import running_events

    lineage.start()
    try:
        with running_events(lineage, every_s):
            yield
    except BaseException as err:
        lineage.fail(err)
        raise


@contextlib.contextmanager
def _ship_secrets(shipment: Shipment, options: PipelineOptions, *, local: bool) -> Iterator[None]:
    """Gets the secret values given here to the workers, outside the job's options and proto.

    Workers in this process read them where they are kept. Local worker processes
    (``--direct_running_mode=multi_processing``) inherit them as environment
    variables for the run. Remote workers get them in a file (mode 0600) staged with
    the job through Beam's ``--files_to_stage`` (Dataflow: the staging bucket), which
    they read from ``$SEMI_PERSISTENT_DIRECTORY/staged``; it is deleted here once the
    job is submitted.
    """
    values = shipment.values()
    if not values:
        yield
        return
    if local:
        mode = options.get_all_options().get("direct_running_mode")
        environment = shipment.environment() if mode == "multi_processing" else {}
        saved = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        return
    with tempfile.TemporaryDirectory(prefix="dataplane-") as directory:
        path = shipment.write(Path(directory))
        setup = options.view_as(SetupOptions)
        setup.files_to_stage = [*(setup.files_to_stage or []), str(path)]
        print(
            f"{len(values)} secret value(s) given here are staged with the job as {path.name} "
            "(not in its options, steps or description)",
            file=sys.stderr,
        )
        yield


def _runner_dry_runs(runner: Any) -> bool:
    """Whether the runner itself honours ``--dry_run`` (Dataflow builds the job, submits none)."""
    return runner == "DataflowRunner"


@contextlib.contextmanager
def discarded_unless_run(pipeline: beam.Pipeline) -> Iterator[Callable[[], None]]:
    """Removes the local temp dir Beam made for ``pipeline`` unless the block calls the
    function it yields (the pipeline will run: ``run()`` removes the dir itself).

    Beam makes a ``beam-pipeline-temp*`` directory for every pipeline it constructs
    and removes it only in ``run()``: a pipeline built and never run (a dry run, a
    picture, a build that fails) would leave one behind per call.

    >>> import os
    >>> pipeline = beam.Pipeline()
    >>> with discarded_unless_run(pipeline):
    ...     pass
    >>> os.path.exists(pipeline.local_tempdir)
    False
    """
    running = False

    def run_it() -> None:
        nonlocal running
        running = True

    try:
        yield run_it
    finally:
        if not running:
            shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)


def _launched(pipeline: beam.Pipeline, result: Any, *, dry_run: bool) -> Launched:
    runner = type(pipeline.runner).__name__
    if dry_run:
        built = getattr(pipeline.runner, "proto_pipeline", None) if result is not None else None
        proto = built or pipeline.to_runner_api()
        steps = sorted({t.unique_name for t in proto.components.transforms.values()} - {""})
        top = [name for name in steps if "/" not in name]
        return Launched(
            runner,
            f"dry run: built the job for {runner} ({len(steps)} steps; top level: "
            f"{', '.join(top)}); nothing was submitted",
        )
    return Launched(runner, f"submitted to {runner}: job {_job_id(result)}; not waiting for it")


def _job_id(result: Any) -> str:
    job_id = getattr(result, "job_id", None)
    if callable(job_id):
        return str(job_id())
    return str(getattr(result, "_job_id", None) or "(the runner gave no id)")


@contextlib.contextmanager
def _stop_on_signals(*, local: bool) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop the sources; second: exit at once (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if not local:
            print(f"\n{name}: no longer waiting; the job goes on on its runner", file=sys.stderr)
            os._exit(0)
            return
        if stop_requested():
            print(
                f"\n{name} again: stopping now; batches not yet committed are read again "
                "by the next run",
                file=sys.stderr,
                flush=True,
            )
            os._exit(_FORCED_EXIT)
            return
        marks = [v for k, v in LOCAL_GAUGES.copy().items() if k.startswith("watermark_ms ")]
        request_stop(watermark_ms=min(marks) if marks else None)
        print(
            f"\n{name}: stopping: sources stop reading, batches in flight are committed "
            "(again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.signal(signum, handle) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def command_line(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    groups: Sequence[type[PipelineOptions]],
    run: Callable[..., Any],
) -> int:
    """``--help``, or a run whose summary is printed.

    Exits 2 with the message on bad flags, 3 when the source cannot be reached.
    """
    if help_requested(argv):
        print_help(prog, description, [*groups, RunOptions])
        return 0
    try:
        summary = run(argv, show_progress=sys.stderr.isatty())
    except KeyboardInterrupt:  # before the run's own handlers were in place, or after
        print("\ninterrupted", file=sys.stderr)
        return _FORCED_EXIT
    except Exception as err:
        # Raised inside a step, ours arrive wrapped by the runner (RuntimeError on the
        # local runners); the original is in the chain.
        cause = _dataplane_error(err)
        if cause is None:
            raise
        print(f"error: {_as_flag(cause)}", file=sys.stderr)
        return 3 if isinstance(cause, SourceUnavailableError) else 2
    summary.print()
    return 0


def _as_flag(err: DataplaneError) -> str:
    """The message, naming the flag where a transform's parameter came from one.

    >>> str(_as_flag(ConfigError("batch_size", "must be positive, got 0")))
    '--batch_size: must be positive, got 0'
    >>> str(_as_flag(ConfigError("registry root", "'x' is not a directory")))
    "registry root: 'x' is not a directory"
    """
    name = getattr(err, "name", "")
    if isinstance(err, ConfigError) and name.isidentifier() and f"--{name}" in known_flags():
        return f"--{err!s}"
    return str(err)


def _dataplane_error(err: BaseException) -> DataplaneError | None:
    """``err`` or the first of its causes that is one of ours."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, DataplaneError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
