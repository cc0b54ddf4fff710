"""WriteToDelta: batched, idempotent appends of rows to a Delta table."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from transforms.deadletter import DeadLetter, dead_letter_row
from transforms.errors import ConfigError
from transforms.sinks.batching import BatchPerTable
from transforms.sinks.commit_metrics import note_commit
from transforms.sinks.compaction import (
    CompactionSchedule,
    ScheduledCompaction,
    scheduled_compaction,
    table_lock,
)
from transforms.sinks.delta_commit import COORDINATE_SCHEMA, DeltaCommitter
from transforms.sinks.frontier import Progress
from transforms.sinks.progress_log import TableRef

__all__ = ["DEAD_LETTER_SCHEMA", "WriteDeadLettersToDelta", "WriteToDelta", "rows_to_arrow"]

DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("key", pa.binary()),
        pa.field("value", pa.binary()),
        pa.field(
            "headers",
            pa.list_(pa.struct([pa.field("name", pa.string()), pa.field("value", pa.binary())])),
        ),
        pa.field("stage", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("message", pa.string()),
        pa.field("schema_subject", pa.string()),
        pa.field("schema_id", pa.int64()),
        pa.field("failed_at_ms", pa.int64()),
    ]
)
# `dataplane dlq replay` adds replay_id, replayed_at_ms and replay_outcome to the
# table when it marks letters; appends leave them null.
_DERIVED = ("_offset", "_event_time")
_INTEGER_OFFSET_SOURCES = ("kafka",)


def rows_to_arrow(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows carrying coordinate fields → an Arrow table of coordinates + ``schema``.

    Fields of a row that ``schema`` does not name are left out.

    >>> row = {"_record_id": "r", "_source": "kafka", "_stream": "t", "_partition": "0",
    ...        "_position": "9", "_event_time_ms": 0, "text": "hi", "extra": 1}
    >>> rows_to_arrow([row], pa.schema([("text", pa.string())])).column_names[5:]
    ['_offset', '_event_time', '_prev_position', 'text']
    """
    rows = list(rows)
    stored = [f for f in COORDINATE_SCHEMA if f.name not in _DERIVED] + list(schema)
    table = pa.Table.from_pylist(rows, schema=pa.schema(stored))
    offsets = [
        int(r["_position"]) if r["_source"] in _INTEGER_OFFSET_SOURCES else None for r in rows
    ]
    offset_field = COORDINATE_SCHEMA.field("_offset")
    table = table.add_column(5, offset_field, pa.array(offsets, offset_field.type))
    times = pa.array([r["_event_time_ms"] for r in rows], pa.int64()).cast(
        COORDINATE_SCHEMA.field("_event_time").type
    )
    return table.add_column(6, COORDINATE_SCHEMA.field("_event_time"), [times])


class _CommitBatchDoFn(beam.DoFn):
    def __init__(
        self,
        table_uri: str,
        schema: pa.Schema,
        committer_args: dict[str, Any],
        compaction: CompactionSchedule | None,
    ) -> None:
        self._table_uri, self._schema, self._committer_args = table_uri, schema, committer_args
        self._schedule = compaction
        self._committer: DeltaCommitter | None = None
        self._compaction: ScheduledCompaction | None = None
        self._rows = Metrics.counter("dataplane.delta", "rows_written")
        self._skipped = Metrics.counter("dataplane.delta", "rows_already_committed")
        self._commits = Metrics.counter("dataplane.delta", "commits")
        self._empty = Metrics.counter("dataplane.delta", "commits_skipped_as_duplicate")

    def setup(self) -> None:
        self._committer = DeltaCommitter(self._table_uri, **self._committer_args)
        if self._schedule is not None:
            options = self._committer_args["storage_options"]
            self._compaction = scheduled_compaction(
                self._table_uri, self._schedule, storage_options=options
            )

    def process(self, keyed_batch: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[dict]:
        assert self._committer is not None
        batch = rows_to_arrow(keyed_batch[1], self._schema)
        # Commits and compactions of this table in this process take turns.
        with table_lock(self._table_uri):
            started = time.monotonic()
            outcome = self._committer.commit(batch)
            note_commit(self._table_uri, batch, outcome, time.monotonic() - started)
            if self._compaction is not None and outcome.version is not None:
                self._compaction.run_if_due()
        self._rows.inc(outcome.rows_written)
        self._skipped.inc(outcome.rows_already_committed)
        (self._commits if outcome.version is not None else self._empty).inc()
        yield {
            "table": outcome.table_uri,
            "version": outcome.version,
            "rows_written": outcome.rows_written,
            "rows_already_committed": outcome.rows_already_committed,
            "attempts": outcome.attempts,
        }


class WriteToDelta(beam.PTransform):
    """Appends rows to a Delta table exactly once per source record.

    Rows are dicts carrying the coordinate fields that decoding adds (``_record_id``,
    ``_source``, ``_stream``, ``_partition``, ``_position``, ``_event_time_ms``). They
    are batched under one key per table (one committer per table), converted to
    Arrow and appended; each commit records every source partition's highest
    written offset as a Delta txn action, and rows already in the table (a retry, a
    rerun) are dropped before committing. See :mod:`transforms.sinks.delta_commit`.

    Args:
        table_uri: local path or ``s3://`` URI of the table (created on first commit).
        schema: the Arrow schema of the data columns; coordinate columns are added.
        app_id: names this output's progress in the table log.
        storage_options: delta-rs storage options (endpoints, credentials).
        partition_by: partition columns when the table is created.
        batch_size: rows per commit at most (Delta commits cost tens of ms: batch thousands).
        max_batch_latency_s: longest a row waits for its batch to fill in streaming.
        siblings: the pipeline's other tables whose committed records count toward
            this table's source frontier (see :mod:`transforms.sinks.frontier`).
        on_progress: called on the committing worker after each commit with the
            recorded progress, e.g. :class:`~transforms.sources.kafka_offsets.CommitGroupOffsets`.
        compaction: compact the table (optimize small files, vacuum old ones) at most
            this often, right after one of this sink's commits; None: never. See
            :mod:`transforms.sinks.compaction`.

    Returns:
        A PCollection of one dict per batch: ``table``, ``version`` (None when nothing
        was new), ``rows_written``, ``rows_already_committed``, ``attempts``.

    Raises:
        ConfigError: an empty URI or app id, a non-positive batch size or latency.

    Example:
        >>> import tempfile, apache_beam as beam, pyarrow as pa
        >>> from deltalake import DeltaTable
        >>> rows = [{"_record_id": f"r{i}", "_source": "kafka", "_stream": "t",
        ...          "_partition": "0", "_position": str(i), "_event_time_ms": 0,
        ...          "word": w} for i, w in enumerate(["a", "b"])]
        >>> uri = tempfile.mkdtemp()
        >>> for _ in range(2):  # the second run writes nothing new
        ...     with beam.Pipeline() as p:
        ...         _ = p | beam.Create(rows) | WriteToDelta(
        ...             uri, schema=pa.schema([("word", pa.string())]), app_id="demo")
        >>> DeltaTable(uri).to_pyarrow_table().num_rows
        2
    """

    def __init__(
        self,
        table_uri: str,
        *,
        schema: pa.Schema,
        app_id: str,
        storage_options: dict[str, str] | None = None,
        partition_by: list[str] | None = None,
        batch_size: int = 10_000,
        max_batch_latency_s: float = 5.0,
        siblings: Sequence[TableRef] = (),
        on_progress: Callable[[Progress], None] | None = None,
        compaction: CompactionSchedule | None = None,
    ) -> None:
        super().__init__()
        if not table_uri:
            raise ConfigError("table_uri", "expected a path or URI, got nothing")
        if not app_id:
            raise ConfigError("app_id", "expected a name for this output's progress, got nothing")
        if batch_size <= 0 or max_batch_latency_s <= 0:
            raise ConfigError(
                "batch_size" if batch_size <= 0 else "max_batch_latency_s",
                f"must be positive, got {batch_size if batch_size <= 0 else max_batch_latency_s}",
            )
        self._table_uri, self._schema = table_uri, schema
        self._batch_size, self._latency_s = batch_size, max_batch_latency_s
        self._compaction = compaction
        self._committer_args = {
            "app_id": app_id,
            "storage_options": storage_options,
            "partition_by": partition_by,
            "siblings": tuple(siblings),
            "on_progress": on_progress,
        }

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        uri = self._table_uri
        return (
            rows
            | "Batch" >> BatchPerTable(uri, self._batch_size, self._latency_s)
            | "Commit"
            >> beam.ParDo(
                _CommitBatchDoFn(uri, self._schema, self._committer_args, self._compaction)
            )
        )

    def display_data(self) -> dict[str, Any]:
        return {
            "table_uri": self._table_uri,
            "app_id": self._committer_args["app_id"],
            "batch_size": self._batch_size,
            "max_batch_latency_s": self._latency_s,
            "compact_every_s": self._compaction.every_s if self._compaction else 0,
        }


class WriteDeadLettersToDelta(beam.PTransform):
    """Writes :class:`~transforms.deadletter.DeadLetter` elements to their own Delta table.

    Raw bytes, headers, stage, reason and source coordinates are kept; writes are
    idempotent like :class:`WriteToDelta`'s.

    Example:
        >>> import tempfile, apache_beam as beam
        >>> from deltalake import DeltaTable
        >>> from transforms.deadletter import dead_letter
        >>> from transforms.record import make_record
        >>> bad = make_record(source="kafka", stream="t", partition=0, position=3,
        ...                   value=b"\\xff", event_time_ms=0)
        >>> uri = tempfile.mkdtemp()
        >>> with beam.Pipeline() as p:
        ...     _ = (p | beam.Create([dead_letter(bad, stage="decode", error_type="NotUtf8",
        ...                                       message="not UTF-8")])
        ...            | WriteDeadLettersToDelta(uri, app_id="demo-dlq"))
        >>> DeltaTable(uri).to_pyarrow_table().column("error_type").to_pylist()
        ['NotUtf8']
    """

    def __init__(self, table_uri: str, *, app_id: str, **write_args: Any) -> None:
        super().__init__()
        self._write = WriteToDelta(
            table_uri, schema=DEAD_LETTER_SCHEMA, app_id=app_id, **write_args
        )

    def expand(self, letters: beam.PCollection[DeadLetter]) -> beam.PCollection:
        return letters | "ToRow" >> beam.Map(dead_letter_row) | "Write" >> self._write
