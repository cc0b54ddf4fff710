"""What every pipeline module's ``run`` and ``main`` share: flags → runner → run → summary."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines.options import (
    DeltaSinkOptions,
    SourceOptions,
    help_requested,
    kafka_settings,
    print_help,
    storage_options_from,
)
from runners.presets import resolve_runner
from runners.profiles import expand_profile
from transforms.errors import DataplaneError, SourceUnavailableError
from transforms.sources.preflight import wait_for_source
from transforms.sources.uri import is_unbounded

__all__ = ["command_line", "run_pipeline"]

Build = Callable[[beam.Pipeline, PipelineOptions], Any]


def run_pipeline(build: Build, argv: Sequence[str] | None, *, show_progress: bool) -> Any:
    """Builds the pipeline from flags (profile expanded), runs it, returns the run summary."""
    from runners.summary import RunSummary, progress_display

    options = PipelineOptions(expand_profile(argv))
    source = options.view_as(SourceOptions)
    streaming = bool(source.source) and is_unbounded(
        source.source, bounded=source.bounded, max_records=source.max_records
    )
    runner = resolve_runner(options, bounded=not streaming)
    if source.source:
        wait_for_source(
            source.source,
            timeout_s=source.source_timeout_s,
            consumer_config=kafka_settings(source),
        )
    started = time.monotonic()
    pipeline = beam.Pipeline(runner=runner, options=options)
    build(pipeline, options)
    with progress_display(enabled=show_progress):
        result = pipeline.run()
        result.wait_until_finish()
    sink = options.view_as(DeltaSinkOptions)
    return RunSummary.collect(
        result,
        output=sink.output,
        dlq=sink.dlq,
        elapsed_s=time.monotonic() - started,
        storage_options=storage_options_from(options),
    )


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
        print_help(prog, description, groups)
        return 0
    try:
        summary = run(argv, show_progress=sys.stderr.isatty())
    except SourceUnavailableError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    except DataplaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary.print()
    return 0
