"""MergeIntoDelta: upserts rows into a Delta table by key, newest version wins.

Aggregates are revised (a late pane updates its window), so they are merged, not
appended. Each row carries a version column (``pane_index`` for window panes):

* within a batch only the highest version of each key is kept;
* a matched row is updated only when the incoming version is higher, so a retry,
  a rerun or an older pane arriving after a newer one changes nothing;
* an unmatched row is inserted.

A merge that changes nothing does not create a table version, so rerunning the
same input leaves the table as it was. Like the append committer, each merge
commits against the snapshot it read with ``max_commit_retries=0``; on a
concurrent commit it reloads and merges again (the predicate makes that safe).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from schemas.errors import ConfigError, SinkCommitError
from transforms.checkpoint.table import TableHandle, backoff_after_conflict
from transforms.sinks.batching import BatchPerTable, BatchPolicy
from transforms.sinks.commit_metrics import note_merge

__all__ = ["MergeCommitter", "MergeIntoDelta", "MergeOutcome", "newest_per_key"]


@dataclass(frozen=True)
class MergeOutcome:
    """What one merged batch did to the table."""

    table_uri: str
    version: int | None  # the table version committed, None when nothing changed
    inserted: int
    updated: int
    unchanged: int
    attempts: int


def newest_per_key(batch: pa.Table, keys: Sequence[str], version_column: str) -> pa.Table:
    """The row of highest ``version_column`` for each key (ties: the later row).

    >>> t = pa.table({"k": ["a", "a", "b"], "v": [1, 0, 0], "x": [10, 20, 30]})
    >>> newest_per_key(t, ["k"], "v").to_pydict()
    {'k': ['a', 'b'], 'v': [1, 0], 'x': [10, 30]}
    """
    numbered = batch.append_column("__row", pa.array(range(batch.num_rows), pa.int64()))
    order = numbered.sort_by([(version_column, "descending"), ("__row", "descending")])
    first = order.group_by(list(keys), use_threads=False).aggregate([("__row", "first")])
    rows = sorted(first["__row_first"].to_pylist())
    return batch.take(pa.array(rows, pa.int64()))


class MergeCommitter:
    """Merges Arrow batches into one Delta table by key columns.

    Args:
        table_uri: local path or ``s3://`` URI of the table (created on first merge).
        keys: the columns that identify a row.
        version_column: a row replaces the stored one only when this is higher.
        storage_options: passed to delta-rs.
        partition_by: table partition columns when the table is created.
        max_attempts: merges tried before :class:`SinkCommitError`.
    """

    def __init__(
        self,
        table_uri: str,
        *,
        keys: Sequence[str],
        version_column: str,
        storage_options: dict[str, str] | None = None,
        partition_by: list[str] | None = None,
        max_attempts: int = 10,
    ) -> None:
        self.table_uri, self._keys, self._version = table_uri, list(keys), version_column
        self._options, self._partition_by = storage_options, partition_by
        self._max_attempts = max_attempts
        self._handle = TableHandle(table_uri, storage_options)

    def merge(self, batch: pa.Table) -> MergeOutcome:
        """Upserts ``batch``; returns what changed."""
        batch = newest_per_key(batch, self._keys, self._version)
        for attempt in range(1, self._max_attempts + 1):
            table = self._handle.current()
            try:
                if table is None:
                    return self._create(batch, attempt)
                return self._merge(table, batch, attempt)
            except CommitFailedError:
                self._handle.forget()
                backoff_after_conflict(attempt)
        raise SinkCommitError(
            f"gave up merging {batch.num_rows} rows into {self.table_uri} after "
            f"{self._max_attempts} conflicting attempts"
        )

    def _create(self, batch: pa.Table, attempt: int) -> MergeOutcome:
        try:
            write_deltalake(
                self.table_uri,
                batch,
                mode="error",
                partition_by=self._partition_by,
                storage_options=self._options,
            )
        except DeltaError as err:
            if "already exists" not in str(err):
                raise
            # Another writer created the table first: merge into it instead.
            raise CommitFailedError(str(err)) from None
        return MergeOutcome(self.table_uri, 0, batch.num_rows, 0, 0, attempt)

    def _merge(self, table: DeltaTable, batch: pa.Table, attempt: int) -> MergeOutcome:
        on = " AND ".join(f"t.{key} = s.{key}" for key in self._keys)
        metrics = (
            table.merge(
                batch,
                predicate=on,
                source_alias="s",
                target_alias="t",
                commit_properties=CommitProperties(max_commit_retries=0),
            )
            .when_matched_update_all(predicate=f"s.{self._version} > t.{self._version}")
            .when_not_matched_insert_all()
            .execute()
        )
        inserted = int(metrics["num_target_rows_inserted"])
        updated = int(metrics["num_target_rows_updated"])
        version = None
        if inserted or updated:
            table.update_incremental()
            version = int(table.version())
        unchanged = batch.num_rows - inserted - updated
        return MergeOutcome(self.table_uri, version, inserted, updated, unchanged, attempt)


class _MergeBatchDoFn(beam.DoFn):
    def __init__(self, table_uri: str, schema: pa.Schema, args: dict[str, Any]) -> None:
        self._table_uri, self._schema, self._args = table_uri, schema, args
        self._committer: MergeCommitter | None = None
        self._inserted = Metrics.counter("dataplane.delta_merge", "rows_inserted")
        self._updated = Metrics.counter("dataplane.delta_merge", "rows_updated")
        self._unchanged = Metrics.counter("dataplane.delta_merge", "rows_unchanged")
        self._commits = Metrics.counter("dataplane.delta_merge", "commits")

    def setup(self) -> None:
        self._committer = MergeCommitter(self._table_uri, **self._args)

    def process(self, keyed_batch: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[dict]:
        assert self._committer is not None
        batch = pa.Table.from_pylist(list(keyed_batch[1]), schema=self._schema)
        started = time.monotonic()
        outcome = self._committer.merge(batch)
        note_merge(
            self._table_uri,
            version=outcome.version,
            inserted=outcome.inserted,
            updated=outcome.updated,
            seconds=time.monotonic() - started,
        )
        self._inserted.inc(outcome.inserted)
        self._updated.inc(outcome.updated)
        self._unchanged.inc(outcome.unchanged)
        if outcome.version is not None:
            self._commits.inc()
        yield {**outcome.__dict__, "table": outcome.table_uri, "batch": batch}


class MergeIntoDelta(beam.PTransform):
    """Upserts dict rows into a Delta table on ``keys``; higher ``version_column`` wins.

    Rows are batched under one key per table (one committer per table), so merges
    into one table never run concurrently within a pipeline.

    Args:
        table_uri: local path or ``s3://`` URI (created on the first batch).
        schema: the Arrow schema of the rows (fields not named are left out).
        keys: the columns identifying a row, e.g. ``["vehicle_id", "window_start"]``.
        version_column: the column deciding which of two rows for a key is newer.
        storage_options: delta-rs storage options.
        partition_by: partition columns when the table is created.
        batch_size: rows per merge at most.
        max_batch_latency_s: longest a row waits for its batch in streaming.

    Returns:
        A PCollection of one dict per batch: ``table``, ``version`` (None when nothing
        changed), ``inserted``, ``updated``, ``unchanged``, ``attempts``, and ``batch``
        (the Arrow table merged, for checks downstream).

    Raises:
        ConfigError: an empty URI, no keys, a version column missing from the schema,
            a non-positive batch size or latency.

    Example:
        >>> import tempfile, apache_beam as beam, pyarrow as pa
        >>> from deltalake import DeltaTable
        >>> schema = pa.schema([("k", pa.string()), ("pane", pa.int64()), ("n", pa.int64())])
        >>> uri = tempfile.mkdtemp()
        >>> for rows in ([{"k": "a", "pane": 0, "n": 1}],
        ...              [{"k": "a", "pane": 1, "n": 2}, {"k": "a", "pane": 0, "n": 1}]):
        ...     with beam.Pipeline() as p:
        ...         _ = p | beam.Create(rows) | MergeIntoDelta(
        ...             uri, schema=schema, keys=["k"], version_column="pane")
        >>> DeltaTable(uri).to_pyarrow_table().to_pylist()
        [{'k': 'a', 'pane': 1, 'n': 2}]
    """

    def __init__(
        self,
        table_uri: str,
        *,
        schema: pa.Schema,
        keys: Sequence[str],
        version_column: str,
        storage_options: dict[str, str] | None = None,
        partition_by: list[str] | None = None,
        batch_size: int = 10_000,
        max_batch_latency_s: float = 5.0,
    ) -> None:
        super().__init__()
        _check_merge_args(table_uri, schema, keys, version_column)
        self._table_uri, self._schema = table_uri, schema
        self._batching = BatchPolicy(batch_size, max_batch_latency_s)
        self._args: dict[str, Any] = {
            "keys": list(keys),
            "version_column": version_column,
            "storage_options": storage_options,
            "partition_by": partition_by,
        }

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        uri = self._table_uri
        return (
            rows
            | "Batch" >> BatchPerTable(uri, self._batching, role="merge")
            | "Merge" >> beam.ParDo(_MergeBatchDoFn(uri, self._schema, self._args))
        )

    def display_data(self) -> dict[str, Any]:
        return {
            "table_uri": self._table_uri,
            "keys": ",".join(self._args["keys"]),
            "version_column": self._args["version_column"],
            **self._batching.display_data(),
        }


def _check_merge_args(uri: str, schema: pa.Schema, keys: Sequence[str], version: str) -> None:
    if not uri:
        raise ConfigError("table_uri", "expected a path or URI, got nothing")
    if not keys:
        raise ConfigError("keys", "expected the columns that identify a row")
    for column in [*keys, version]:
        if column not in schema.names:
            raise ConfigError(
                "keys" if column in keys else "version_column",
                f"{column!r} is not a column of the schema ({', '.join(schema.names)})",
            )
