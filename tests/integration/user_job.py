"""A job of one's own built from the library's transforms (the README shows this file)."""

import sys

import apache_beam as beam
import pyarrow as pa

from transforms import DecodeAndValidate, ScoreSentiment, WriteWithDeadLetters, arrow_schema_of


def run_job(bootstrap: str, topic: str, lake: str) -> None:
    """Scores the tweets on a topic into Delta; records that fail go to a dead-letter table."""
    schema = arrow_schema_of("tweet").append(pa.field("sentiment_compound", pa.float64()))
    sink = WriteWithDeadLetters(
        f"{lake}/scored", f"{lake}/dead_letters", schema=schema, app_id="my-job"
    )
    # Resumes after what both tables hold; the group's offsets follow the commits.
    read = sink.read_from_uri(f"kafka://{bootstrap}/{topic}?group=my-job", bounded=True)
    with beam.Pipeline(runner="DirectRunner") as pipeline:
        records = pipeline | "Read" >> read
        rows, undecodable = records | "Decode" >> DecodeAndValidate(subject="tweet")
        scored, too_long = rows | "Score" >> ScoreSentiment()
        _ = (scored, undecodable, too_long) | "Write" >> sink


if __name__ == "__main__":
    run_job(*sys.argv[1:])
