"""The sentiment pipeline: Kafka → decode + validate (registry) → CleanText → VADER → Delta.

Run it::

    python -m beam_pipelines.sentiment --source kafka://127.0.0.1:9092/tweets \\
        --output /tmp/lake/tweets --dlq /tmp/lake/dead_letters --bounded

Every record read ends either in the output table or in the dead-letter table,
each exactly once, also when the run is repeated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines.counting import AllDeadLetters, CountDeadLetters, CountValid
from beam_pipelines.from_flags import decode, read_settings
from beam_pipelines.launch.launcher import command_line, run_pipeline
from beam_pipelines.launch.options import (
    DeltaSinkOptions,
    RegistryOptions,
    SourceOptions,
    required_flag,
    storage_options_from,
)
from transforms.batches import Batch, items_of, same_face
from transforms.featurize import CleanText, ScoreSentiment
from transforms.with_dead_letters import WriteWithDeadLetters

__all__ = ["OUTPUTS", "REPLAYABLE", "SENTIMENT_SCHEMA", "SentimentOptions", "build", "main"]

# The output flags, and whether each is a Delta table (checked before a run starts).
OUTPUTS = {"output": True, "dlq": True}

# Each record lands as one row (or one dead letter): `dataplane dlq replay` can re-process them.
REPLAYABLE = True

SENTIMENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("created_at", pa.string()),
        ("lang", pa.string()),
        ("user", pa.struct([("id", pa.string()), ("handle", pa.string())])),
        ("text", pa.string()),
        ("clean_text", pa.string()),
        ("hashtags", pa.list_(pa.string())),
        ("sentiment_neg", pa.float64()),
        ("sentiment_neu", pa.float64()),
        ("sentiment_pos", pa.float64()),
        ("sentiment_compound", pa.float64()),
        ("sentiment_label", pa.string()),
    ]
)


class SentimentOptions(PipelineOptions):
    """Options of the sentiment pipeline itself."""

    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
        parser.add_argument(
            "--max_text_chars",
            type=int,
            default=2000,
            help="longer texts become dead letters (VADER's cost grows faster than linearly)",
        )


class _CountLabels(beam.DoFn):
    def process(self, rows: dict[str, Any] | Batch) -> Any:
        for label, count in Counter(row["sentiment_label"] for row in items_of(rows)).items():
            Metrics.counter("dataplane.labels", label).inc(count)
        yield rows


def build(pipeline: beam.Pipeline, options: PipelineOptions) -> dict[str, beam.PCollection]:
    """Adds the sentiment pipeline to ``pipeline``; returns its main PCollections."""
    source, sink = options.view_as(SourceOptions), options.view_as(DeltaSinkOptions)
    own, schemas = options.view_as(SentimentOptions), options.view_as(RegistryOptions)
    output = required_flag(options, "output", example="/tmp/lake/tweets")
    dlq = required_flag(options, "dlq", example="/tmp/lake/dead_letters")
    sinks = WriteWithDeadLetters(
        output,
        dlq,
        schema=SENTIMENT_SCHEMA,
        app_id=sink.app_id or "sentiment",
        storage_options=storage_options_from(options),
        batch_size=sink.batch_size,
        max_batch_latency_s=sink.max_batch_latency_s,
        compaction=sink.compaction(),
        schema_mode=sink.schema_mode,
        resume=sink.resume,
    )
    read = sinks.read_from_uri(
        required_flag(options, "source", example="kafka://127.0.0.1:9092/tweets"),
        **read_settings(source),
        batched=True,
    )

    records = pipeline | "Read" >> read
    rows, bad_json = records | "Decode" >> decode(schemas, subject="tweet")
    cleaned, bad_text = rows | "Clean" >> CleanText()
    scored, bad_score = cleaned | "Score" >> ScoreSentiment(max_chars=own.max_text_chars)
    labelled = scored | "CountLabels" >> same_face(beam.ParDo(_CountLabels()), scored)
    counted = labelled | "CountValid" >> same_face(beam.ParDo(CountValid()), labelled)
    commits, misfits = counted | "WriteScored" >> sinks.write_rows()
    dead = (
        (bad_json, bad_text, bad_score, misfits)
        | "AllDeadLetters" >> AllDeadLetters(misfits=1)
        | "CountDeadLetters" >> beam.ParDo(CountDeadLetters())
    )
    dead_commits = dead | "WriteDeadLetters" >> sinks.write_dead_letters()
    return {
        "records": records,
        "scored": scored,
        "dead_letters": dead,
        "commits": commits,
        "dead_letter_commits": dead_commits,
    }


def run(argv: Sequence[str] | None = None, *, show_progress: bool = False) -> Any:
    """Builds and runs the pipeline from command-line flags; returns the run summary."""
    return run_pipeline(build, argv, show_progress=show_progress, outputs=OUTPUTS)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: runs the pipeline and prints the summary of a bounded run."""
    return command_line(
        argv,
        prog="python -m beam_pipelines.sentiment",
        description="Tweets scored with VADER sentiment, into Delta.",
        groups=[SourceOptions, RegistryOptions, SentimentOptions, DeltaSinkOptions],
        run=run,
    )


if __name__ == "__main__":
    from beam_pipelines.launch.exiting import run_and_exit

    run_and_exit(main)
