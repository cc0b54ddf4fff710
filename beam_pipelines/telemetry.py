"""The telemetry pipeline: 5-minute average speed per vehicle in event time.

any source → Avro decode via the registry → event time from ``ts`` → physics
checks → geohash zone → per-vehicle windowed aggregates, and four outputs:

* ``--output``: the aggregates, a Delta table upserted on (vehicle_id, window_start),
  so late panes update their row and reruns change nothing;
* ``--readings_output``: cleaned readings as Parquet under ``dt=YYYY-MM-DD/hour=HH``;
* ``--late_output``: readings that came after their window closed (Delta);
* ``--dlq``: dead letters (Delta); optionally ``--quality_output``: a Great
  Expectations verdict per committed aggregate batch.

Run it::

    python -m beam_pipelines.telemetry --source kafka://127.0.0.1:9092/telemetry \\
        --output /tmp/lake/vehicle_windows --readings_output /tmp/lake/readings \\
        --late_output /tmp/lake/late_readings --dlq /tmp/lake/telemetry_dlq --bounded
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines.counting import AllDeadLetters, CountDeadLetters, CountValid
from beam_pipelines.from_flags import decode, read_settings
from beam_pipelines.launch.launcher import command_line, run_pipeline
from beam_pipelines.launch.options import (
    DeltaSinkOptions,
    RegistryOptions,
    SourceOptions,
    StorageOptions,
    required_flag,
    storage_options_from,
)
from schemas.errors import ConfigError
from transforms.batches import same_face
from transforms.deadletter import dead_letter_app_id
from transforms.featurize import CheckBounds, ExtractEventTime, Geohash, WindowedAggregate
from transforms.featurize.bounds import TELEMETRY_BOUNDS
from transforms.featurize.vehicle import SpeedStats
from transforms.quality import PACKAGED_SUITES, QUALITY_SCHEMA, ValidateBatches
from transforms.sinks import (
    MergeIntoDelta,
    WriteDeadLettersToDelta,
    WriteToDelta,
    WriteToPartitionedParquet,
)
from transforms.sinks.compaction import CompactOnSchedule
from transforms.sources import read_from_uri

__all__ = [
    "AGGREGATE_SCHEMA",
    "LATE_SCHEMA",
    "OUTPUTS",
    "READING_SCHEMA",
    "TelemetryOptions",
    "aggregate_row",
    "build",
    "main",
    "run",
]

# The output flags, and whether each is a Delta table (checked before a run starts).
OUTPUTS = {
    "output": True,
    "dlq": True,
    "late_output": True,
    "quality_output": True,
    "readings_output": False,
}

_UTC_MS = pa.timestamp("ms", tz="UTC")

READING_SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.string()),
        ("ts", _UTC_MS),
        ("speed_kph", pa.float64()),
        ("engine_temp_c", pa.float64()),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("fuel_level_pct", pa.float64()),
        ("geohash", pa.string()),
    ]
)
AGGREGATE_SCHEMA = pa.schema(
    [
        ("vehicle_id", pa.string()),
        ("window_start", _UTC_MS),
        ("window_end", _UTC_MS),
        ("count", pa.int64()),
        ("avg_speed_kph", pa.float64()),
        ("min_speed_kph", pa.float64()),
        ("max_speed_kph", pa.float64()),
        ("avg_engine_temp_c", pa.float64()),
        ("last_zone", pa.string()),
        ("last_reading_at", _UTC_MS),
        ("pane_timing", pa.string()),
        ("pane_index", pa.int64()),
        ("pane_records", pa.int64()),
        ("window_records", pa.int64()),
        ("watermark_at_firing", _UTC_MS),
    ]
)
LATE_SCHEMA = pa.schema(
    [
        *READING_SCHEMA,
        ("window_start", _UTC_MS),
        ("window_end", _UTC_MS),
        ("watermark_at_arrival", _UTC_MS),
    ]
)


class TelemetryOptions(PipelineOptions):
    """Options of the telemetry pipeline itself."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--readings_output", help="Parquet base path or URI for cleaned readings"
        )
        parser.add_argument(
            "--late_output", help="Delta table for readings that came after their window closed"
        )
        parser.add_argument(
            "--quality_output",
            help="Delta table of Great Expectations results per aggregate batch (off if unset)",
        )
        parser.add_argument(
            "--suite",
            default=str(PACKAGED_SUITES / "vehicle_windows.json"),
            help="Great Expectations suite (JSON) for the aggregates",
        )
        parser.add_argument(
            "--geohash_precision", type=int, default=6, help="geohash characters of a zone, 1..12"
        )
        parser.add_argument("--window_s", type=float, default=300, help="window length, seconds")
        parser.add_argument(
            "--window_period_s",
            type=float,
            default=None,
            help="start a window every this many seconds (sliding windows); unset: fixed",
        )
        parser.add_argument(
            "--allowed_lateness_s",
            type=float,
            default=600,
            help="late readings within this long after a window's end update it; later ones "
            "go to --late_output",
        )
        parser.add_argument(
            "--early_after_count",
            type=int,
            default=0,
            help="emit an EARLY pane after this many new readings of a window (0: never)",
        )
        parser.add_argument(
            "--readings_shards", type=int, default=1, help="Parquet files written per hour at once"
        )
        parser.add_argument(
            "--readings_batch_size", type=int, default=100_000, help="readings per file at most"
        )
        parser.add_argument(
            "--readings_max_latency_s",
            type=float,
            default=None,
            help="longest a reading waits for its Parquet file in streaming "
            "(default: --max_batch_latency_s)",
        )


def aggregate_row(pane: dict[str, Any]) -> dict[str, Any]:
    """A WindowedAggregate pane as a row of :data:`AGGREGATE_SCHEMA`.

    >>> row = aggregate_row({"vehicle_id": "v", "window_start_ms": 0, "window_end_ms": 300_000,
    ...                      "last_reading_ms": 5, "watermark_ms": None, "count": 1})
    >>> row["window_end"], row["watermark_at_firing"]
    (300000, None)
    """
    renamed = {
        "window_start": pane["window_start_ms"],
        "window_end": pane["window_end_ms"],
        "last_reading_at": pane.get("last_reading_ms"),
        "watermark_at_firing": pane.get("watermark_ms"),
    }
    return {**pane, **renamed}


def _late_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "window_start": row["window_start_ms"],
        "window_end": row["window_end_ms"],
        "watermark_at_arrival": row["watermark_ms"],
    }


def _window_args(own: TelemetryOptions) -> dict[str, Any]:
    if not 1 <= own.geohash_precision <= 12:
        raise ConfigError("--geohash_precision", f"expected 1..12, got {own.geohash_precision}")
    if own.early_after_count < 0:
        raise ConfigError("--early_after_count", f"expected 0 or more, got {own.early_after_count}")
    for flag, value in (
        ("--window_s", own.window_s),
        ("--window_period_s", own.window_period_s),
        ("--allowed_lateness_s", own.allowed_lateness_s),
    ):
        if value is not None and value < 0:
            raise ConfigError(flag, f"must not be negative, got {value}")
    try:
        WindowedAggregate(
            "vehicle_id",
            SpeedStats(),
            size_s=own.window_s,
            period_s=own.window_period_s,
            allowed_lateness_s=own.allowed_lateness_s,
        )
    except ConfigError as err:
        flag = {"size_s": "--window_s", "period_s": "--window_period_s"}.get(err.name, err.name)
        raise err.naming(flag) from None
    return {
        "size_s": own.window_s,
        "period_s": own.window_period_s,
        "allowed_lateness_s": own.allowed_lateness_s,
        "early_after_count": own.early_after_count or None,
    }


def build(pipeline: beam.Pipeline, options: PipelineOptions) -> dict[str, beam.PCollection]:
    """Adds the telemetry pipeline to ``pipeline``; returns its main PCollections."""
    source, sink = options.view_as(SourceOptions), options.view_as(DeltaSinkOptions)
    own, schemas = options.view_as(TelemetryOptions), options.view_as(RegistryOptions)
    output = required_flag(options, "output", example="/tmp/lake/vehicle_windows")
    readings_output = required_flag(options, "readings_output", example="/tmp/lake/readings")
    late_output = required_flag(options, "late_output", example="/tmp/lake/late_readings")
    dlq = required_flag(options, "dlq", example="/tmp/lake/telemetry_dead_letters")
    window_args = _window_args(own)
    storage = storage_options_from(options)
    app_id = sink.app_id or "telemetry"
    delta_args = {
        "storage_options": storage,
        "batch_size": sink.batch_size,
        "max_batch_latency_s": sink.max_batch_latency_s,
    }
    compaction = sink.compaction()
    append_args = {**delta_args, "compaction": compaction, "schema_mode": sink.schema_mode}
    read = read_from_uri(
        required_flag(options, "source", example="kafka://127.0.0.1:9092/telemetry"),
        **read_settings(source),
        batched=True,
    )

    records = pipeline | "Read" >> read
    rows, bad_decode = records | "Decode" >> decode(schemas, subject="vehicle_telemetry")
    timed, bad_time = rows | "EventTime" >> ExtractEventTime("ts")
    plausible, bad_physics = timed | "Physics" >> CheckBounds(TELEMETRY_BOUNDS)
    zoned, bad_zone = plausible | "Zone" >> Geohash(own.geohash_precision)
    readings = zoned | "CountValid" >> same_face(beam.ParDo(CountValid()), zoned)
    files = readings | "WriteReadings" >> WriteToPartitionedParquet(
        readings_output,
        schema=READING_SCHEMA,
        storage_options=storage,
        shards=own.readings_shards,
        batch_size=own.readings_batch_size,
        max_batch_latency_s=own.readings_max_latency_s or sink.max_batch_latency_s,
    )
    panes, too_late = readings | "Windows" >> WindowedAggregate(
        "vehicle_id", SpeedStats(), **window_args
    )
    merged = (
        panes
        | "ToAggregateRows" >> beam.Map(aggregate_row)
        | "MergeAggregates"
        >> MergeIntoDelta(
            output,
            schema=AGGREGATE_SCHEMA,
            keys=["vehicle_id", "window_start"],
            version_column="pane_index",
            **delta_args,
        )
    )
    if compaction is not None:  # the merge sink compacts after its commits pass
        _ = merged | "CompactAggregates" >> CompactOnSchedule(
            output, compaction, storage_options=storage
        )
    late_commits, late_misfits = (
        too_late
        | "ToLateRows" >> beam.Map(_late_row)
        | "WriteLate"
        >> WriteToDelta(
            late_output, schema=LATE_SCHEMA, app_id=f"{app_id}-late", **append_args
        ).with_dead_letters()
    )
    dead = (
        (bad_decode, bad_time, bad_physics, bad_zone, late_misfits)
        | "AllDeadLetters" >> AllDeadLetters(misfits=1)
        | "CountDeadLetters" >> beam.ParDo(CountDeadLetters())
    )
    dead_commits = dead | "WriteDeadLetters" >> WriteDeadLettersToDelta(
        dlq, app_id=dead_letter_app_id(app_id), **append_args
    )
    outputs = {
        "records": records,
        "readings": readings,
        "panes": panes,
        "too_late": too_late,
        "dead_letters": dead,
        "files": files,
        "merged": merged,
        "late_commits": late_commits,
        "dead_letter_commits": dead_commits,
    }
    if own.quality_output:
        outputs["quality"] = (
            merged
            | "CheckQuality" >> ValidateBatches(own.suite)
            | "WriteQuality"
            >> WriteToDelta(
                own.quality_output,
                schema=QUALITY_SCHEMA,
                app_id=f"{app_id}-quality",
                **append_args,
            )
        )
    return outputs


def run(argv: Sequence[str] | None = None, *, show_progress: bool = False) -> Any:
    """Builds and runs the pipeline from command-line flags; returns the run summary."""
    return run_pipeline(build, argv, show_progress=show_progress, outputs=OUTPUTS)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: runs the pipeline and prints the summary of a bounded run."""
    return command_line(
        argv,
        prog="python -m beam_pipelines.telemetry",
        description="5-minute average speed per vehicle in event time, into Delta and Parquet.",
        groups=[SourceOptions, RegistryOptions, TelemetryOptions, DeltaSinkOptions, StorageOptions],
        run=run,
    )


if __name__ == "__main__":
    from beam_pipelines.launch.exiting import run_and_exit

    run_and_exit(main)
