"""DeltaCommitter: the behaviours mutation testing of delta_commit found unpinned.

tests/unit/test_delta_commit.py holds the main paths (retries, reruns, two writers). This
file pins what the survivors of ``make mutation`` showed no fast test held:

* rows without an integer offset (Pub/Sub, files) are looked up by record id, so
  overlapping and retried batches land once;
* a one-row batch, and a first batch ending at offset 0, record their offset;
* an append after the table gained a column (dead-letter replays) fills it with nulls;
* the rebase check: another writer's commit right after ours is not a rebase; a
  commit on a stale snapshot fails and is retried (never rebased by delta-rs); a
  commit that was rebased anyway is refused;
* the group offsets follow each commit, none after a commit given up, and
  ``close()`` closes their consumer;
* the outcome's ``table_uri`` and ``attempts``; giving up after ``max_attempts``;
* a DeltaError other than "already exists" while creating is raised at once;
* ``partition_by`` and ``storage_options`` apply when the table is created, and the
  options reach every table and log the committer reads.

Delta tables are local directories; the Kafka consumer group is a stand-in.
"""

import tempfile

import pyarrow as pa
import pytest
from confluent_kafka import TopicPartition
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import transforms.checkpoint.log as checkpoint_log
import transforms.checkpoint.table as checkpoint_table
import transforms.sinks.delta_commit as delta_commit
from schemas.errors import SinkCommitError
from transforms.checkpoint.frontier import CHAIN_START
from transforms.checkpoint.group_offsets import CommitGroupOffsets
from transforms.checkpoint.log import TableRef
from transforms.sinks.delta import rows_to_arrow
from transforms.sinks.delta_commit import DeltaCommitter, txn_app_id

SCHEMA = pa.schema([("n", pa.int64())])


def _batch(offsets, *, partition="0", stream="t", source="kafka", chain_from=None):
    """Rows at ``offsets``; Kafka rows carry integer offsets, other sources none.

    With ``chain_from``, each row names the one before it as read (the first names
    ``chain_from``), so the commit records a frontier.
    """
    offsets = list(offsets)
    prevs = [chain_from, *[str(o) for o in offsets[:-1]]] if chain_from else [None] * len(offsets)
    rows = [
        {
            "_record_id": f"{stream}/{partition}/{o}",
            "_source": source,
            "_stream": stream,
            "_partition": partition,
            "_position": str(o) if source == "kafka" else f"m{o}",
            "_event_time_ms": o,
            "_prev_position": prev,
            "n": o,
        }
        for o, prev in zip(offsets, prevs, strict=True)
    ]
    return rows_to_arrow(rows, SCHEMA)


def _ids(uri):
    return DeltaTable(uri).to_pyarrow_table()["_record_id"].to_pylist()


@pytest.fixture
def no_backoff(monkeypatch):
    """Retries after a lost commit race go on at once."""
    monkeypatch.setattr(delta_commit, "backoff_after_conflict", lambda attempt: None)


def _sees_once(monkeypatch, committer, snapshot):
    """The committer's next look at the table sees ``snapshot``; later looks the latest."""
    real, served = committer._handle.current, [snapshot]
    monkeypatch.setattr(committer._handle, "current", lambda: served.pop() if served else real())


# --- rows without integer offsets -------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sets(st.integers(0, 5), min_size=1), min_size=1, max_size=3))
@example([{1, 2}, {1, 2}])  # a retried batch
def test_batches_without_offsets_land_once_however_they_overlap(batches):
    with tempfile.TemporaryDirectory() as uri:
        committer = DeltaCommitter(uri, app_id="app")
        written = set()
        for messages in batches:
            outcome = committer.commit(_batch(sorted(messages), source="pubsub"))
            assert (outcome.rows_written, outcome.rows_already_committed) == (
                len(messages - written),
                len(messages & written),
            )
            written |= messages
        ids = _ids(uri)
    assert sorted(ids) == sorted(f"t/0/{m}" for m in written)


# --- the offsets a commit records -------------------------------------------------------


@pytest.mark.parametrize("offsets", [[0], [7], [0, 1, 2]])
def test_a_first_batch_records_its_highest_offset_and_its_retry_writes_nothing(tmp_path, offsets):
    uri = str(tmp_path)
    committer = DeltaCommitter(uri, app_id="app")
    committer.commit(_batch(offsets))
    assert DeltaTable(uri).transaction_version(txn_app_id("app", "t", "0")) == max(offsets)
    again = committer.commit(_batch(offsets))
    assert (again.version, again.rows_written) == (None, 0)
    assert sorted(_ids(uri)) == sorted(f"t/0/{o}" for o in offsets)


# --- appends after the table's schema grew ----------------------------------------------


def test_an_append_after_the_table_gained_a_column_leaves_that_column_null(tmp_path):
    uri = str(tmp_path)
    committer = DeltaCommitter(uri, app_id="app")
    committer.commit(_batch([1]))
    # A dead-letter replay adds a column: its rows carry it, earlier and later ones do not.
    replayed = _batch([9], partition="1").append_column("replayed_at", pa.array(["r"]))
    write_deltalake(uri, replayed, mode="append", schema_mode="merge")
    outcome = committer.commit(_batch([2, 3]))
    assert outcome.rows_written == 2
    table = DeltaTable(uri).to_pyarrow_table()
    assert table.column_names == replayed.column_names
    rows = {r["_record_id"]: (r["n"], r["replayed_at"]) for r in table.to_pylist()}
    assert rows == {
        "t/0/1": (1, None),
        "t/1/9": (9, "r"),
        "t/0/2": (2, None),
        "t/0/3": (3, None),
    }


# --- the rebase check -------------------------------------------------------------------


def test_a_commit_by_another_writer_right_after_ours_is_not_taken_for_a_rebase(
    tmp_path, monkeypatch
):
    uri = str(tmp_path)
    committer = DeltaCommitter(uri, app_id="app")
    committer.commit(_batch([0]))
    real, looks = committer._handle.current, []

    def current():
        looks.append(1)
        if len(looks) == 2:  # the look after our write: a compaction commits first
            write_deltalake(uri, _batch([100], partition="9"), mode="append")
        return real()

    monkeypatch.setattr(committer._handle, "current", current)
    outcome = committer.commit(_batch([1]))
    assert (outcome.version, outcome.rows_written) == (1, 1)
    assert DeltaTable(uri).version() == 2


def test_a_commit_on_a_stale_snapshot_fails_and_is_retried_not_rebased(
    tmp_path, monkeypatch, no_backoff
):
    uri = str(tmp_path)
    ours, other = DeltaCommitter(uri, app_id="ours"), DeltaCommitter(uri, app_id="other")
    other.commit(_batch([100], partition="1"))
    _sees_once(monkeypatch, ours, DeltaTable(uri))  # version 0, about to be stale
    other.commit(_batch([101], partition="1"))  # version 1: no txn id in common with ours
    outcome = ours.commit(_batch([1, 2]))
    assert (outcome.attempts, outcome.rows_written, outcome.version) == (2, 2, 2)


def test_a_commit_on_a_stale_snapshot_is_checked_again_and_duplicates_nothing(
    tmp_path, monkeypatch, no_backoff
):
    uri = str(tmp_path)
    ours, other = DeltaCommitter(uri, app_id="app"), DeltaCommitter(uri, app_id="app")
    other.commit(_batch([100]))
    _sees_once(monkeypatch, ours, DeltaTable(uri))  # has none of the rows below
    other.commit(_batch(range(0, 10)))
    outcome = ours.commit(_batch(range(5, 15)))
    assert (outcome.attempts, outcome.rows_written, outcome.rows_already_committed) == (2, 5, 5)
    ids = _ids(uri)
    assert len(ids) == len(set(ids)) == 16


def test_a_commit_delta_rs_rebased_onto_another_is_refused(tmp_path, monkeypatch):
    uri = str(tmp_path)
    committer = DeltaCommitter(uri, app_id="app")
    committer.commit(_batch([0]))
    real_write = delta_commit.write_deltalake

    def rebasing_write(table, data, **kwargs):
        write_deltalake(uri, _batch([100], partition="9"), mode="append")  # wins the race
        kwargs["commit_properties"].max_commit_retries = 1  # as delta-rs does by default
        return real_write(table, data, **kwargs)

    monkeypatch.setattr(delta_commit, "write_deltalake", rebasing_write)
    with pytest.raises(SinkCommitError, match=r"our commit is not version 1 .*was rebased"):
        committer.commit(_batch([1]))


# --- the consumer-group offsets ---------------------------------------------------------


class _Group:
    """The consumer group of topic ``t`` as the broker keeps it, and whether it was closed."""

    def __init__(self):
        self.offsets, self.commits, self.closed = {}, [], False

    def committed(self, tps, timeout):
        return [
            TopicPartition("t", tp.partition, self.offsets.get(tp.partition, -1001)) for tp in tps
        ]

    def commit(self, offsets, asynchronous):
        self.commits.append([(tp.partition, tp.offset) for tp in offsets])
        self.offsets.update((tp.partition, tp.offset) for tp in offsets)

    def close(self):
        self.closed = True


def _group_offsets(group):
    hook = CommitGroupOffsets({"bootstrap.servers": "127.0.0.1:9", "group.id": "g"}, "t")
    hook._consumer = group  # the broker stand-in
    return hook


def test_each_commit_moves_the_group_offsets_to_just_after_its_frontier(tmp_path):
    group = _Group()
    committer = DeltaCommitter(str(tmp_path), app_id="app", group_offsets=_group_offsets(group))
    committer.commit(_batch([0, 1, 2], chain_from=CHAIN_START))
    committer.commit(_batch([3, 4], chain_from="2"))
    assert group.commits == [[(0, 3)], [(0, 5)]]


def test_a_commit_given_up_moves_no_group_offset(tmp_path, monkeypatch, no_backoff):
    group = _Group()
    committer = DeltaCommitter(
        str(tmp_path), app_id="app", max_attempts=2, group_offsets=_group_offsets(group)
    )

    def conflict(*args):
        raise CommitFailedError("another writer committed first")

    monkeypatch.setattr(committer, "_append", conflict)
    with pytest.raises(SinkCommitError):
        committer.commit(_batch([0, 1], chain_from=CHAIN_START))
    assert group.commits == []


def test_close_closes_the_group_offsets_consumer(tmp_path):
    DeltaCommitter(str(tmp_path), app_id="app").close()  # no group offsets: nothing to close
    group = _Group()
    committer = DeltaCommitter(str(tmp_path), app_id="app", group_offsets=_group_offsets(group))
    committer.commit(_batch([0], chain_from=CHAIN_START))
    assert not group.closed
    committer.close()
    assert group.closed


# --- the outcome and giving up ----------------------------------------------------------


def test_the_outcome_names_the_table_and_the_attempt_that_decided(tmp_path):
    uri = str(tmp_path)
    committer = DeltaCommitter(uri, app_id="app")
    first = committer.commit(_batch([1]))
    assert (first.table_uri, first.version, first.attempts) == (uri, 0, 1)
    again = committer.commit(_batch([1]))  # nothing new: decided without committing
    assert (again.table_uri, again.version, again.attempts) == (uri, None, 1)


@pytest.mark.parametrize("max_attempts", [None, 3])
def test_a_commit_that_always_conflicts_gives_up_after_max_attempts(
    tmp_path, monkeypatch, no_backoff, max_attempts
):
    given_attempts = {} if max_attempts is None else {"max_attempts": max_attempts}
    committer = DeltaCommitter(str(tmp_path), app_id="app", **given_attempts)
    tries = []

    def conflict(*args):
        tries.append(1)
        raise CommitFailedError("another writer committed first")

    monkeypatch.setattr(committer, "_append", conflict)
    expected = max_attempts or 10  # the default
    with pytest.raises(
        SinkCommitError,
        match=f"gave up committing 1 rows to {tmp_path} after {expected} conflicting attempts",
    ):
        committer.commit(_batch([1]))
    assert len(tries) == expected


def test_a_delta_error_creating_the_table_is_raised_at_once(tmp_path, monkeypatch, no_backoff):
    tries = []

    def disk_full(*args, **kwargs):
        tries.append(1)
        raise DeltaError("disk full")

    monkeypatch.setattr(delta_commit, "write_deltalake", disk_full)
    with pytest.raises(DeltaError, match="disk full"):
        DeltaCommitter(str(tmp_path / "t"), app_id="app").commit(_batch([1]))
    assert len(tries) == 1


# --- options applied when the table is created ------------------------------------------


def test_partition_by_applies_when_the_table_is_created(tmp_path):
    uri = str(tmp_path)
    DeltaCommitter(uri, app_id="app", partition_by=["_partition"]).commit(_batch([1]))
    assert DeltaTable(uri).metadata().partition_columns == ["_partition"]


def test_partition_by_is_not_applied_to_an_existing_table(tmp_path):
    uri = str(tmp_path)
    DeltaCommitter(uri, app_id="app").commit(_batch([1]))
    outcome = DeltaCommitter(uri, app_id="app", partition_by=["_partition"]).commit(_batch([2]))
    assert outcome.rows_written == 1
    assert DeltaTable(uri).metadata().partition_columns == []


def test_storage_options_reach_the_creation_and_every_table_and_log_read(tmp_path, monkeypatch):
    options = {"AWS_REGION": "eu-west-1"}  # local tables accept and ignore it
    uri, sibling = str(tmp_path / "out"), str(tmp_path / "dlq")
    opened, logs, writes = [], [], []
    real_table, real_filesystem = checkpoint_table.DeltaTable, checkpoint_log.arrow_filesystem
    real_write = delta_commit.write_deltalake

    def open_table(table_uri, storage_options=None):
        opened.append((table_uri, storage_options))
        return real_table(table_uri, storage_options=storage_options)

    def log_filesystem(table_uri, storage_options=None):
        logs.append((table_uri, storage_options))
        return real_filesystem(table_uri, storage_options)

    def write(table, data, **kwargs):
        writes.append((table, kwargs["storage_options"]))
        return real_write(table, data, **kwargs)

    monkeypatch.setattr(checkpoint_table, "DeltaTable", open_table)
    monkeypatch.setattr(checkpoint_log, "arrow_filesystem", log_filesystem)
    monkeypatch.setattr(delta_commit, "write_deltalake", write)

    def committer():
        siblings = [TableRef(sibling, "app-dlq")]
        return DeltaCommitter(uri, app_id="app", storage_options=options, siblings=siblings)

    committer().commit(_batch([1]))
    committer().commit(_batch([2]))  # a new worker: reads the checkpoint from the log
    assert writes[0] == (uri, options)  # the table is created with them
    assert {u for u, _ in opened} == {uri, sibling}
    assert all(o == options for _, o in opened), opened
    assert logs and all(o == options for _, o in logs), logs
