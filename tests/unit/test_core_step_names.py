"""The core transforms' step names and named outputs: a contract, not decoration.

Step names are what Dataflow matches when a running job is updated in place (a
renamed step loses its state), what metrics and monitoring pages are attributed
to, and what ``dataplane graph`` draws. Named outputs let a pipeline take a
transform's results by name (``outputs.rows``, ``outputs.dead_letters``).
"""

import apache_beam as beam
import pyarrow as pa
import pytest

from transforms.deadletter import DEAD_LETTER_TAG
from transforms.featurize import ScoreSentiment
from transforms.featurize.vehicle import SpeedStats
from transforms.featurize.windowed import TOO_LATE_TAG, WindowedAggregate
from transforms.sinks.delta_merge import MergeIntoDelta
from transforms.validate import DecodeAndValidate

MERGE_SCHEMA = pa.schema([("k", pa.string()), ("v", pa.int64())])


def _steps(pipeline: beam.Pipeline, top: str) -> list[str]:
    """The steps directly inside the top-level step ``top``."""
    names = [t.unique_name for t in pipeline.to_runner_api().components.transforms.values()]
    return sorted(n for n in names if n.startswith(f"{top}/") and n.count("/") == 1)


@pytest.mark.parametrize(
    ("make", "top", "steps"),
    [
        (ScoreSentiment, "ScoreSentiment", ["ScoreSentiment/ScoreSentiment"]),
        (
            lambda: DecodeAndValidate(subject="tweet"),
            "DecodeAndValidate",
            ["DecodeAndValidate/Decode"],
        ),
        (
            lambda: MergeIntoDelta("/t", schema=MERGE_SCHEMA, keys=["k"], version_column="v"),
            "MergeIntoDelta",
            ["MergeIntoDelta/Batch", "MergeIntoDelta/Merge"],
        ),
        (
            lambda: WindowedAggregate("k", SpeedStats()),
            "WindowedAggregate",
            [
                "WindowedAggregate/Aggregate",
                "WindowedAggregate/IntoGlobalWindow",
                "WindowedAggregate/KeyBy",
                "WindowedAggregate/PackPerKey",
            ],
        ),
    ],
)
def test_core_transforms_keep_their_step_names(make, top, steps):
    pipeline = beam.Pipeline()
    _ = pipeline | beam.Create([{"k": "a", "text": "x", "v": 1}]) | make()
    assert _steps(pipeline, top) == steps


def _named(outputs, main, other, other_tag):
    """The outputs unpack in order, and each is also reachable by its name."""
    first, second = outputs
    assert first is getattr(outputs, main) is outputs[main]
    assert second is getattr(outputs, other) is outputs[other_tag]


def test_outputs_can_be_taken_by_name():
    pipeline = beam.Pipeline()
    rows = pipeline | beam.Create([{"k": "a", "text": "x"}])
    _named(rows | ScoreSentiment(), "rows", "dead_letters", DEAD_LETTER_TAG)
    records = pipeline | "Records" >> beam.Create([])
    _named(records | DecodeAndValidate(subject="tweet"), "rows", "dead_letters", DEAD_LETTER_TAG)
    _named(rows | WindowedAggregate("k", SpeedStats()), "panes", "too_late", TOO_LATE_TAG)
