"""MergeIntoDelta as a pipeline step, and MergeCommitter against other writers.

What ``tests/unit/test_core_delta_merge.py`` leaves out:

* what a merge step reports: its Beam metrics (rows inserted, updated, unchanged,
  commits), the progress counters (``commits``, ``rows_committed``, ``rows_updated``,
  ``commit_seconds``) and the one outcome it emits per batch;
* the schema given to the step shapes the rows (types, fields not named left out);
* a merge that loses to another writer is retried against the new table, and one that
  keeps losing gives up after ``max_attempts``, backing off between attempts;
* ``partition_by`` and ``storage_options`` apply when the table is created and read;
* a merge step and an append step for the same table name their timers apart (Beam's
  in-process runner shares the timers of one name between steps).

Tables are local directories; pipelines run on the in-process runner.
"""

import shutil

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import beam_runner_api_pb2
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from deltalake import DeltaTable

import transforms.checkpoint.table as checkpoint_table
import transforms.sinks.delta_merge as delta_merge
from schemas.errors import SinkCommitError
from transforms.progress import LOCAL
from transforms.sinks.delta import WriteToDelta
from transforms.sinks.delta_merge import MergeCommitter, MergeIntoDelta

# ``n`` is int32: rows converted without the schema would make it int64.
SCHEMA = pa.schema([("k", pa.string()), ("pane", pa.int64()), ("n", pa.int32())])
_EMITTED: list[dict] = []


def _emit(outcome):
    _EMITTED.append(outcome)


def _rows(table_uri):
    return sorted(
        (r["k"], r["pane"], r["n"]) for r in DeltaTable(table_uri).to_pyarrow_table().to_pylist()
    )


def _run_merge(table_uri, rows):
    """Runs MergeIntoDelta over ``rows``; returns (its outputs, its Beam counters)."""
    _EMITTED.clear()
    pipeline = beam.Pipeline(runner=FnApiRunner())
    _ = (
        pipeline
        | beam.Create(rows)
        | MergeIntoDelta(table_uri, schema=SCHEMA, keys=["k"], version_column="pane")
        | beam.Map(_emit)
    )
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace("dataplane.delta_merge"))
    # A counter never incremented is not reported: it reads as 0.
    counters = dict.fromkeys(("rows_inserted", "rows_updated", "rows_unchanged", "commits"), 0)
    counters.update({c.key.metric.name: c.committed for c in query["counters"]})
    return list(_EMITTED), counters


def _progress(table_uri):
    counts = {
        name: LOCAL.counter(name, table=table_uri)
        for name in ("commits", "rows_committed", "rows_updated")
    }
    seconds = LOCAL.snapshot().histograms.get(("commit_seconds", (("table", table_uri),)))
    return counts, seconds


def test_a_merge_step_reports_its_rows_and_commits_and_emits_each_outcome(tmp_path):
    uri = str(tmp_path / "agg")
    first = [{"k": "a", "pane": 0, "n": 1}, {"k": "b", "pane": 0, "n": 2}]
    outputs, counters = _run_merge(uri, first)
    assert counters == {"rows_inserted": 2, "rows_updated": 0, "rows_unchanged": 0, "commits": 1}
    [outcome] = outputs
    assert {k: outcome[k] for k in ("table", "version", "inserted", "updated", "unchanged")} == {
        "table": uri,
        "version": 0,
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
    }
    assert outcome["attempts"] == 1
    assert sorted(outcome["batch"].column("k").to_pylist()) == ["a", "b"]
    counts, seconds = _progress(uri)
    assert counts == {"commits": 1, "rows_committed": 2, "rows_updated": 0}
    assert seconds.count == 1 and 0 <= seconds.total < 60

    # A newer pane of a, the same pane of b: one update, one unchanged row, one commit.
    again = [{"k": "a", "pane": 1, "n": 10}, {"k": "b", "pane": 0, "n": 20}]
    outputs, counters = _run_merge(uri, again)
    assert counters == {"rows_inserted": 0, "rows_updated": 1, "rows_unchanged": 1, "commits": 1}
    assert [(o["version"], o["updated"], o["unchanged"]) for o in outputs] == [(1, 1, 1)]
    assert _progress(uri)[0] == {"commits": 2, "rows_committed": 2, "rows_updated": 1}
    assert _rows(uri) == [("a", 1, 10), ("b", 0, 2)]

    # The same input once more changes nothing: no commit is counted anywhere.
    outputs, counters = _run_merge(uri, again)
    assert counters == {"rows_inserted": 0, "rows_updated": 0, "rows_unchanged": 2, "commits": 0}
    assert [o["version"] for o in outputs] == [None]
    counts, seconds = _progress(uri)
    assert counts == {"commits": 2, "rows_committed": 2, "rows_updated": 1}
    assert seconds.count == 3 and 0 <= seconds.total < 60
    assert DeltaTable(uri).version() == 1


def test_the_schema_given_shapes_the_rows_merged(tmp_path):
    uri = str(tmp_path / "agg")
    rows = [{"k": "a", "pane": 0, "n": 1, "junk": "not in the schema"}]
    [outcome], _ = _run_merge(uri, rows)
    assert outcome["batch"].schema == SCHEMA
    stored = DeltaTable(uri).to_pyarrow_table()
    assert stored.column_names == ["k", "pane", "n"]
    assert stored.schema.field("n").type == pa.int32()


def _batch(rows):
    return pa.Table.from_pylist(
        [dict(zip(("k", "pane", "n"), r, strict=True)) for r in rows], schema=SCHEMA
    )


def _stale_handle(committer, uri, stale_calls):
    """Makes ``committer`` see the table at version 0 for its first ``stale_calls`` loads,
    as a writer does that read the table just before another writer committed."""
    real = committer._handle.current
    calls = []

    def current():
        calls.append(1)
        if len(calls) <= stale_calls:
            return DeltaTable(uri, version=0)
        return real()

    committer._handle.current = current
    return calls


def test_a_merge_beaten_by_another_writer_is_merged_again_into_the_new_table(tmp_path, monkeypatch):
    monkeypatch.setattr(delta_merge, "backoff_after_conflict", lambda attempt: None)
    uri = str(tmp_path / "agg")
    MergeCommitter(uri, keys=["k"], version_column="pane").merge(_batch([("a", 0, 1)]))
    late = MergeCommitter(uri, keys=["k"], version_column="pane")
    _stale_handle(late, uri, stale_calls=1)
    # Another writer commits x at pane 2 after `late` read version 0.
    MergeCommitter(uri, keys=["k"], version_column="pane").merge(_batch([("x", 2, 20)]))
    outcome = late.merge(_batch([("x", 1, 10), ("a", 0, 1)]))
    # The first commit conflicts; merged again against version 1, x's pane 1 is older.
    assert (outcome.table_uri, outcome.attempts) == (uri, 2)
    assert (outcome.version, outcome.inserted, outcome.updated) == (None, 0, 0)
    assert _rows(uri) == [("a", 0, 1), ("x", 2, 20)]


def test_a_merge_that_keeps_losing_gives_up_after_max_attempts(tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(delta_merge, "backoff_after_conflict", waits.append)
    uri = str(tmp_path / "agg")
    MergeCommitter(uri, keys=["k"], version_column="pane").merge(_batch([("a", 0, 1)]))
    MergeCommitter(uri, keys=["k"], version_column="pane").merge(_batch([("b", 0, 2)]))
    loser = MergeCommitter(uri, keys=["k"], version_column="pane")
    loads = _stale_handle(loser, uri, stale_calls=100)
    with pytest.raises(SinkCommitError, match=f"merging 1 rows into {uri} after 10 conflicting"):
        loser.merge(_batch([("c", 0, 3)]))
    assert len(loads) == 10
    assert waits == list(range(1, 11))
    assert _rows(uri) == [("a", 0, 1), ("b", 0, 2)]


def test_a_merge_that_updates_reports_its_attempt_and_table(tmp_path):
    uri = str(tmp_path / "agg")
    committer = MergeCommitter(uri, keys=["k"], version_column="pane")
    committer.merge(_batch([("a", 0, 1)]))
    outcome = committer.merge(_batch([("a", 1, 2)]))
    assert (outcome.table_uri, outcome.version, outcome.updated, outcome.attempts) == (
        uri,
        1,
        1,
        1,
    )


def test_partition_by_applies_when_the_merge_creates_the_table(tmp_path):
    uri = str(tmp_path / "agg")
    committer = MergeCommitter(uri, keys=["k"], version_column="pane", partition_by=["k"])
    committer.merge(_batch([("a", 0, 1), ("b", 0, 2)]))
    assert DeltaTable(uri).metadata().partition_columns == ["k"]
    assert _rows(uri) == [("a", 0, 1), ("b", 0, 2)]


def test_storage_options_reach_the_creation_and_every_table_read(tmp_path, monkeypatch):
    options = {"AWS_REGION": "eu-west-1"}  # local tables accept and ignore it
    uri = str(tmp_path / "agg")
    opened, writes = [], []
    real_table, real_write = checkpoint_table.DeltaTable, delta_merge.write_deltalake

    def open_table(table_uri, storage_options=None):
        opened.append((table_uri, storage_options))
        return real_table(table_uri, storage_options=storage_options)

    def write(table, data, **kwargs):
        writes.append((table, kwargs.get("storage_options")))
        return real_write(table, data, **kwargs)

    monkeypatch.setattr(checkpoint_table, "DeltaTable", open_table)
    monkeypatch.setattr(delta_merge, "write_deltalake", write)
    MergeCommitter(uri, keys=["k"], version_column="pane", storage_options=options).merge(
        _batch([("a", 0, 1)])
    )
    MergeCommitter(uri, keys=["k"], version_column="pane", storage_options=options).merge(
        _batch([("a", 1, 2)])
    )
    assert writes == [(uri, options)]
    assert opened and all(o == (uri, options) for o in opened), opened
    assert _rows(uri) == [("a", 1, 2)]


def test_merge_defaults_batch_ten_thousand_rows_for_at_most_five_seconds():
    transform = MergeIntoDelta("/t", schema=SCHEMA, keys=["k"], version_column="pane")
    shown = transform.display_data()
    assert (shown["batch_size"], shown["max_batch_latency_s"]) == (10_000, 5.0)


def test_a_merge_and_an_append_into_one_table_name_their_timers_apart():
    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming"]))
    try:
        rows = pipeline | beam.Create([{"k": "a", "pane": 0, "n": 1}])
        _ = rows | "Append" >> WriteToDelta("/lake/t", schema=SCHEMA, app_id="app")
        _ = rows | "Merge" >> MergeIntoDelta(
            "/lake/t", schema=SCHEMA, keys=["k"], version_column="pane"
        )
        proto = pipeline.to_runner_api()
    finally:
        shutil.rmtree(pipeline.local_tempdir, ignore_errors=True)
    families = {}
    for transform in proto.components.transforms.values():
        if transform.spec.urn == common_urns.primitives.PAR_DO.urn:
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            if payload.timer_family_specs:
                families[transform.unique_name.split("/")[0]] = set(payload.timer_family_specs)
    assert sorted(families) == ["Append", "Merge"]
    assert not families["Append"] & families["Merge"]
