"""MergeIntoDelta / MergeCommitter: newest version per key wins, and reruns change nothing."""

import pyarrow as pa
import pytest
from deltalake import DeltaTable
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import ConfigError, SinkCommitError
from transforms.sinks.delta_merge import MergeCommitter, MergeIntoDelta, newest_per_key

SCHEMA = pa.schema([("k", pa.string()), ("w", pa.int64()), ("pane", pa.int64()), ("n", pa.int64())])


def _batch(rows):
    return pa.Table.from_pylist(
        [dict(zip(("k", "w", "pane", "n"), r, strict=True)) for r in rows], schema=SCHEMA
    )


def _table(uri):
    return sorted(
        (r["k"], r["w"], r["pane"], r["n"]) for r in DeltaTable(uri).to_pyarrow_table().to_pylist()
    )


_ROWS = st.lists(
    st.tuples(
        st.sampled_from("abc"), st.integers(0, 2), st.integers(0, 3), st.integers(-1000, 1000)
    ),
    max_size=30,
)


@given(_ROWS)
def test_newest_per_key_keeps_the_highest_version_and_the_later_row_of_a_tie(rows):
    kept = newest_per_key(_batch(rows), ["k", "w"], "pane").to_pylist()
    # Oracle: the last row holding the highest version of each key, in batch order.
    best = {}
    for index, (k, w, pane, _n) in enumerate(rows):
        if (k, w) not in best or pane >= rows[best[(k, w)]][2]:
            best[(k, w)] = index
    expected = [rows[i] for i in sorted(best.values())]
    assert [(r["k"], r["w"], r["pane"], r["n"]) for r in kept] == expected


def test_a_merge_inserts_new_keys_updates_newer_and_leaves_older(tmp_path):
    uri = str(tmp_path / "t")
    committer = MergeCommitter(uri, keys=["k", "w"], version_column="pane")
    first = committer.merge(_batch([("a", 0, 1, 10), ("a", 1, 1, 11), ("b", 0, 0, 20)]))
    assert (first.version, first.inserted, first.updated, first.unchanged) == (0, 3, 0, 0)
    assert first.table_uri == uri and first.attempts == 1
    second = committer.merge(
        _batch(
            [
                ("a", 0, 2, 12),  # newer pane: update
                ("a", 1, 1, 99),  # same pane: unchanged
                ("b", 0, 0, 0),  # same pane: unchanged
                ("c", 0, 0, 30),  # new key: insert (same k as nothing, same w as a/0)
                ("a", 0, 0, 5),  # older than the pane in this batch: dropped before the merge
            ]
        )
    )
    assert (second.version, second.inserted, second.updated, second.unchanged) == (1, 1, 1, 2)
    assert _table(uri) == [("a", 0, 2, 12), ("a", 1, 1, 11), ("b", 0, 0, 20), ("c", 0, 0, 30)]
    # The same batch again changes nothing and makes no version.
    again = committer.merge(_batch([("a", 0, 2, 12), ("c", 0, 0, 30)]))
    assert (again.version, again.inserted, again.updated, again.unchanged) == (None, 0, 0, 2)
    assert DeltaTable(uri).version() == 1


def test_an_update_alone_makes_a_version(tmp_path):
    uri = str(tmp_path / "t")
    committer = MergeCommitter(uri, keys=["k"], version_column="pane")
    committer.merge(_batch([("a", 0, 0, 1)]))
    outcome = committer.merge(_batch([("a", 0, 1, 2)]))
    assert (outcome.version, outcome.inserted, outcome.updated) == (1, 0, 1)


def test_creating_a_table_another_writer_created_meanwhile_is_a_conflict(tmp_path):
    from deltalake.exceptions import CommitFailedError

    uri = str(tmp_path / "t")
    MergeCommitter(uri, keys=["k"], version_column="pane").merge(_batch([("a", 0, 1, 1)]))
    slow = MergeCommitter(uri, keys=["k"], version_column="pane")
    with pytest.raises(CommitFailedError, match="already exists"):
        slow._create(_batch([("a", 0, 2, 2)]), 1)  # it saw no table before the other's create
    assert _table(uri) == [("a", 0, 1, 1)]


def test_a_merge_that_gets_no_attempt_gives_up_naming_the_table(tmp_path):
    uri = str(tmp_path / "t")
    committer = MergeCommitter(uri, keys=["k"], version_column="pane", max_attempts=0)
    with pytest.raises(SinkCommitError, match=f"gave up merging 2 rows into {uri} after 0"):
        committer.merge(_batch([("a", 0, 2, 2), ("b", 0, 2, 2)]))


def test_a_create_failing_for_another_reason_is_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    committer = MergeCommitter(str(blocker / "t"), keys=["k"], version_column="pane")
    with pytest.raises(Exception) as caught:
        committer.merge(_batch([("a", 0, 0, 1)]))
    assert not isinstance(caught.value, SinkCommitError)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"table_uri": ""}, "table_uri: expected a path or URI, got nothing"),
        ({"keys": []}, "keys: expected the columns that identify a row"),
        ({"keys": ["k", "x"]}, r"keys: 'x' is not a column of the schema \(k, w, pane, n\)"),
        ({"version_column": "v"}, "version_column: 'v' is not a column of the schema"),
        ({"batch_size": 0}, "batch_size: must be positive, got 0"),
        ({"max_batch_latency_s": 0.0}, "max_batch_latency_s: must be positive, got 0.0"),
        ({"batch_size": -1, "max_batch_latency_s": -1.0}, "batch_size: must be positive, got -1"),
    ],
)
def test_merge_settings_are_checked_naming_the_parameter(args, message):
    settings = {"table_uri": "/t", "keys": ["k"], "version_column": "pane", **args}
    uri = settings.pop("table_uri")
    with pytest.raises(ConfigError, match=message):
        MergeIntoDelta(uri, schema=SCHEMA, **settings)


def test_smallest_positive_settings_are_accepted():
    MergeIntoDelta(
        "/t",
        schema=SCHEMA,
        keys=["k"],
        version_column="pane",
        batch_size=1,
        max_batch_latency_s=1e-9,
    )


def test_display_data_shows_the_merge_settings():
    transform = MergeIntoDelta(
        "/t", schema=SCHEMA, keys=["k", "w"], version_column="pane", batch_size=7
    )
    assert transform.display_data() == {
        "table_uri": "/t",
        "keys": "k,w",
        "version_column": "pane",
        "batch_size": 7,
        "max_batch_latency_s": 5.0,
    }
