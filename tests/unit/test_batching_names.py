"""The sinks' batching steps name their timers the same way on every build of a pipeline
(a runner comparing a running job's graph with its update's sees the same steps), and
differently from each other (Beam's in-process runner shares timers of one name)."""

from __future__ import annotations

import shutil

import apache_beam as beam
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.sinks import MergeIntoDelta, WriteToDelta, WriteToPartitionedParquet

_SCHEMA = pa.schema([("k", pa.string()), ("v", pa.int64())])


def _timer_families(tables: list[str]) -> dict[str, set[str]]:
    """Builds (never runs) a streaming pipeline with a sink per table: timer names per step."""
    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    try:
        rows = pipeline | beam.Create([{"k": "a", "v": 1}])
        for n, table in enumerate(tables):
            _ = rows | f"Append{n}" >> WriteToDelta(table, schema=_SCHEMA, app_id="a")
            _ = rows | f"Merge{n}" >> MergeIntoDelta(
                table, schema=_SCHEMA, keys=["k"], version_column="v"
            )
            _ = rows | f"Files{n}" >> WriteToPartitionedParquet(f"{table}-files", schema=_SCHEMA)
        proto = pipeline.to_runner_api()
    finally:
        shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
    found: dict[str, set[str]] = {}
    for transform in proto.components.transforms.values():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            if payload.timer_family_specs:
                found[transform.unique_name] = set(payload.timer_family_specs)
    return found


@settings(max_examples=10, deadline=None)
@given(
    tables=st.lists(
        st.from_regex(r"/lake/[a-z]{1,8}", fullmatch=True), min_size=1, max_size=3, unique=True
    )
)
def test_timer_names_are_the_same_on_every_build_and_differ_between_steps(tables):
    first, second = _timer_families(tables), _timer_families(tables)
    assert first == second
    assert len(first) == 3 * len(tables)  # every sink's batching step has timers
    every = [name for names in first.values() for name in names]
    assert len(every) == len(set(every))  # no two steps share a timer family
