"""Idempotent Delta commits: the table log is the checkpoint.

Every commit appends rows and, in the same commit, records:

* the writer's :class:`~transforms.checkpoint.frontier.Checkpoint` (every source
  partition's frontier, from the records' ``prev_position`` chains) in its commit
  info, and a txn action ``<app_id>.progress`` whose version is this commit's
  table version, so a reader finds the latest checkpoint in two small reads (see
  :mod:`transforms.checkpoint.log`); sources resume after it;
* per source partition with integer offsets (Kafka), a txn action
  ``<app_id>-<stream>-<partition>`` whose version is the highest offset written
  (as kafka-delta-ingest does);
* a commit token in its commit info, by which the writer finds its own commit.

Before each commit the committer drops rows already in the table:

* rows above a partition's recorded offset cannot be in the table (a partition
  with no recorded offset yet is looked up in full, so a renamed app id does not
  duplicate rows); rows without an offset (Kinesis, Pub/Sub, files) are looked up;
* rows at or below it (a retried batch, a rerun, records that reached the sink out
  of order) are looked up by ``_record_id`` in the table and dropped if present.

delta-rs records txn actions but does not enforce them, and by default it rebases
a losing append onto the winner's commit. We commit against the exact snapshot we
checked with ``max_commit_retries=0``, so any concurrent commit makes ours fail;
we then reload, check again and retry. That keeps two writers on one table safe.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from schemas.errors import SinkCommitError
from transforms.checkpoint.frontier import Checkpoint, PartitionKey, segments
from transforms.checkpoint.group_offsets import CommitGroupOffsets
from transforms.checkpoint.log import CheckpointLog, TableRef, checkpoint_txn
from transforms.checkpoint.table import TableHandle, backoff_after_conflict

__all__ = [
    "COORDINATE_SCHEMA",
    "CommitOutcome",
    "DeltaCommitter",
    "chain_runs",
    "txn_app_id",
]

_TOKEN_KEY = "dataplane.commit_token"  # tells our commit from a later writer's

COORDINATE_SCHEMA = pa.schema(
    [
        pa.field("_record_id", pa.string(), nullable=False),
        pa.field("_source", pa.string(), nullable=False),
        pa.field("_stream", pa.string(), nullable=False),
        pa.field("_partition", pa.string(), nullable=False),
        pa.field("_position", pa.string(), nullable=False),
        pa.field("_offset", pa.int64()),  # integer offset where the source has one (Kafka)
        pa.field("_event_time", pa.timestamp("ms", tz="UTC")),
        pa.field("_prev_position", pa.string()),  # the record read before, see Record
    ]
)


def txn_app_id(app_id: str, stream: str, partition: str) -> str:
    """The txn action id under which a source partition's checkpoint is recorded.

    >>> txn_app_id("sentiment", "tweets", "3")
    'sentiment-tweets-3'
    """
    return f"{app_id}-{stream}-{partition}"


@dataclass(frozen=True)
class CommitOutcome:
    """What one batch did to the table."""

    table_uri: str
    version: int | None  # the table version committed, None when nothing was new
    rows_written: int
    rows_already_committed: int
    attempts: int


class DeltaCommitter:
    """Appends Arrow batches to one Delta table exactly once per source record.

    Args:
        table_uri: local path or ``s3://`` / ``gs://`` URI of the table.
        app_id: names this writer's txn actions; one per logical pipeline output.
        storage_options: passed to delta-rs (credentials, endpoints).
        partition_by: table partition columns.
        max_attempts: commits tried before giving up with :class:`SinkCommitError`.
        siblings: the pipeline's other tables (e.g. the dead-letter table): records
            committed there count toward this table's source frontier, see
            :mod:`transforms.checkpoint.frontier`.
        group_offsets: the Kafka consumer-group offsets to move forward after each
            commit, up to the checkpoint it recorded (rows are safely in the table by
            then); see :class:`~transforms.checkpoint.group_offsets.CommitGroupOffsets`.
    """

    def __init__(
        self,
        table_uri: str,
        *,
        app_id: str,
        storage_options: dict[str, str] | None = None,
        partition_by: list[str] | None = None,
        max_attempts: int = 10,
        siblings: Sequence[TableRef] = (),
        group_offsets: CommitGroupOffsets | None = None,
    ) -> None:
        self.table_uri, self.app_id = table_uri, app_id
        self._options = storage_options
        self._partition_by = partition_by
        self._max_attempts = max_attempts
        self._handle = TableHandle(table_uri, storage_options)
        self._log = CheckpointLog(TableRef(table_uri, app_id), storage_options)
        self._siblings = [CheckpointLog(ref, storage_options) for ref in siblings]
        self._group_offsets = group_offsets

    def commit(self, batch: pa.Table) -> CommitOutcome:
        """Appends the rows of ``batch`` not yet in the table; returns what it did."""
        batch = _unique_rows(batch)
        runs = chain_runs(batch)
        for attempt in range(1, self._max_attempts + 1):
            table = self._handle.current()
            fresh = self._not_yet_committed(table, batch)
            if fresh.num_rows == 0:
                return CommitOutcome(self.table_uri, None, 0, batch.num_rows, attempt)
            checkpoint = self._log.at(table).after_commit(
                runs, (sibling.latest() for sibling in self._siblings)
            )
            try:
                version = self._append(table, fresh, checkpoint)
            except CommitFailedError:
                backoff_after_conflict(attempt)
                continue
            except DeltaError as err:
                if table is not None or "already exists" not in str(err):
                    raise
                backoff_after_conflict(attempt)  # another writer created the table first
                continue
            self._log.remember(version, checkpoint)
            if self._group_offsets is not None:
                self._group_offsets.commit(checkpoint)
            skipped = batch.num_rows - fresh.num_rows
            return CommitOutcome(self.table_uri, version, fresh.num_rows, skipped, attempt)
        raise SinkCommitError(
            f"gave up committing {batch.num_rows} rows to {self.table_uri} after "
            f"{self._max_attempts} conflicting attempts"
        )

    def close(self) -> None:
        """Closes the consumer the group-offset commits opened, if any."""
        if self._group_offsets is not None:
            self._group_offsets.close()

    def _append(self, table: DeltaTable | None, fresh: pa.Table, checkpoint: Checkpoint) -> int:
        expected = int(table.version()) + 1 if table is not None else 0
        pointer = Transaction(checkpoint_txn(self.app_id), expected)
        token = uuid.uuid4().hex
        properties = CommitProperties(
            app_transactions=[*self._offsets(table, fresh), pointer],
            custom_metadata={**self._log.commit_metadata(checkpoint), _TOKEN_KEY: token},
            max_commit_retries=0,
        )
        write_deltalake(
            table if table is not None else self.table_uri,
            _conformed(fresh, table),
            # Creating: fail if another writer created it meanwhile (a conflict, retried
            # against its table) rather than append unchecked on top of its rows.
            mode="append" if table is not None else "error",
            partition_by=self._partition_by if table is None else None,
            storage_options=self._options if table is None else None,
            commit_properties=properties,
        )
        latest = self._handle.current()
        assert latest is not None
        # Cannot fail without rebasing, which we turn off; other writers (a compaction)
        # may have committed after us, so look for our commit where we expect it.
        if int(latest.version()) != expected and _token_at(latest, expected) != token:
            raise SinkCommitError(
                f"{self.table_uri}: our commit is not version {expected} "
                f"(latest {latest.version()}): the commit was rebased"
            )
        return expected

    def _offsets(self, table: DeltaTable | None, fresh: pa.Table) -> list[Transaction]:
        """One txn action per source partition: the highest offset written so far."""
        txns = []
        for (stream, partition), (_low, high) in _offset_spans(fresh).items():
            app = txn_app_id(self.app_id, stream, partition)
            recorded = table.transaction_version(app) if table is not None else None
            txns.append(Transaction(app, max(high, recorded if recorded is not None else -1)))
        return txns

    def _not_yet_committed(self, table: DeltaTable | None, batch: pa.Table) -> pa.Table:
        if table is None:
            return batch
        suspects = self._possibly_committed(table, batch)
        if suspects is None:
            return batch
        present = self._present_ids(table, batch.filter(suspects))
        if len(present) == 0:
            return batch
        return batch.filter(pc.invert(pc.is_in(batch["_record_id"], value_set=present)))

    def _possibly_committed(self, table: DeltaTable, batch: pa.Table) -> pa.Array | None:
        """A mask of rows that may already be in the table (None: certainly none)."""
        mask = pc.is_null(batch["_offset"])
        for (stream, partition), _span in _offset_spans(batch).items():
            recorded = table.transaction_version(txn_app_id(self.app_id, stream, partition))
            same = pc.and_(
                pc.equal(batch["_stream"], stream), pc.equal(batch["_partition"], partition)
            )
            if recorded is None:
                # No checkpoint under this app id (first commit, or a renamed app id):
                # the table may still hold these rows, so look them all up.
                mask = pc.or_(mask, same)
            else:
                mask = pc.or_(mask, pc.and_(same, pc.less_equal(batch["_offset"], recorded)))
        return mask if pc.any(mask).as_py() else None

    def _present_ids(self, table: DeltaTable, suspects: pa.Table) -> pa.Array:
        found = []
        for key, group in _by_partition(suspects).items():
            stream, partition = key
            condition = (pc.field("_stream") == stream) & (pc.field("_partition") == partition)
            offsets = group["_offset"].drop_null()
            if len(offsets) == len(group):
                low, high = pc.min(offsets).as_py(), pc.max(offsets).as_py()
                condition &= (pc.field("_offset") >= low) & (pc.field("_offset") <= high)
            ids = table.to_pyarrow_dataset().to_table(columns=["_record_id"], filter=condition)
            found.append(ids["_record_id"].combine_chunks())
        return pa.concat_arrays(found) if found else pa.array([], pa.string())


def _token_at(table: DeltaTable, version: int) -> str | None:
    """The commit token recorded in ``table``'s commit ``version`` (None if none)."""
    for commit in table.history(int(table.version()) - version + 1):
        if commit.get("version") == version:
            token = commit.get(_TOKEN_KEY)
            return str(token) if token is not None else None
    return None


def _conformed(batch: pa.Table, table: DeltaTable | None) -> pa.Table:
    """``batch`` in the table's column order, with nulls for columns added to the table since.

    (A dead-letter table gains replay columns when letters are replayed; appends
    made afterwards leave them null.)
    """
    if table is None:
        return batch
    target = pa.schema(table.schema().to_arrow())
    names = set(batch.column_names)
    if all(name in names for name in target.names) and len(names) == len(target.names):
        return batch
    columns = []
    for target_field in target:
        if target_field.name in names:
            columns.append(batch[target_field.name])
        else:
            columns.append(pa.nulls(batch.num_rows, target_field.type))
    extra = [n for n in batch.column_names if n not in set(target.names)]
    return pa.table(columns + [batch[n] for n in extra], names=[*target.names, *extra])


def chain_runs(batch: pa.Table) -> dict[PartitionKey, dict[str, str]]:
    """Each partition's chain runs in ``batch`` (rows whose source keeps an order).

    >>> t = pa.table({"_source": ["kafka"] * 3, "_stream": ["t"] * 3, "_partition": ["0"] * 3,
    ...               "_position": ["4", "5", "9"], "_prev_position": ["start", "4", "7"]})
    >>> chain_runs(t)
    {('kafka', 't', '0'): {'7': '9', 'start': '5'}}
    """
    linked = batch.filter(pc.is_valid(batch["_prev_position"]))
    links: dict[PartitionKey, list[tuple[str, str]]] = {}
    columns = [linked[c].to_pylist() for c in ("_source", "_stream", "_partition")]
    positions, prevs = linked["_position"].to_pylist(), linked["_prev_position"].to_pylist()
    for source, stream, partition, position, prev in zip(*columns, positions, prevs, strict=True):
        links.setdefault((source, stream, partition), []).append((position, prev))
    return {key: segments(pairs) for key, pairs in links.items()}


def _unique_rows(batch: pa.Table) -> pa.Table:
    """Drops repeated record ids within one batch (an upstream retry can repeat a row)."""
    ids = batch["_record_id"]
    if pc.count_distinct(ids).as_py() == batch.num_rows:
        return batch
    first = batch.append_column("_row", pa.array(range(batch.num_rows), pa.int64()))
    keep = first.group_by("_record_id").aggregate([("_row", "min")])["_row_min"]
    return batch.take(pa.array(sorted(keep.to_pylist()), pa.int64()))


def _by_partition(batch: pa.Table) -> dict[tuple[str, str], pa.Table]:
    keys = batch.select(["_stream", "_partition"]).group_by(["_stream", "_partition"]).aggregate([])
    return {
        (s, p): batch.filter(
            pc.and_(pc.equal(batch["_stream"], s), pc.equal(batch["_partition"], p))
        )
        for s, p in zip(keys["_stream"].to_pylist(), keys["_partition"].to_pylist(), strict=True)
    }


def _offset_spans(batch: pa.Table) -> dict[tuple[str, str], tuple[int, int]]:
    """(stream, partition) -> (lowest, highest) integer offset in ``batch``."""
    with_offsets = batch.filter(pc.is_valid(batch["_offset"]))
    if with_offsets.num_rows == 0:
        return {}
    spans = with_offsets.group_by(["_stream", "_partition"]).aggregate(
        [("_offset", "min"), ("_offset", "max")]
    )
    rows: list[dict[str, Any]] = spans.to_pylist()
    return {(r["_stream"], r["_partition"]): (r["_offset_min"], r["_offset_max"]) for r in rows}
