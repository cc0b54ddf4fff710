"""WriteToDelta: batched, idempotent appends of rows to a Delta table."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from deltalake.exceptions import SchemaMismatchError

from schemas.errors import ConfigError, DataplaneError
from transforms.checkpoint.group_offsets import CommitGroupOffsets
from transforms.checkpoint.log import TableRef
from transforms.checkpoint.table import TableHandle, merge_new_columns, new_columns
from transforms.deadletter import (
    DEAD_LETTER_SCHEMA,
    DEAD_LETTER_TAG,
    DeadLetter,
    dead_letter_row,
    row_dead_letter,
)
from transforms.record import COORDINATE_FIELDS
from transforms.sinks.batching import BatchPerTable, BatchPolicy
from transforms.sinks.commit_metrics import note_commit
from transforms.sinks.compaction import (
    CompactionSchedule,
    ScheduledCompaction,
    scheduled_compaction,
    table_lock,
)
from transforms.sinks.delta_commit import COORDINATE_SCHEMA, CommitOutcome, DeltaCommitter
from transforms.sinks.fit import SCHEMA_MISMATCH, split_fitting

__all__ = [
    "REQUIRED_COORDINATES",
    "MissingCoordinatesError",
    "RowsDoNotFitError",
    "SchemaMode",
    "TableSchemaError",
    "WriteDeadLettersToDelta",
    "WriteToDelta",
    "rows_to_arrow",
]

SchemaMode = Literal["strict", "merge"]
_SCHEMA_MODES = ("strict", "merge")
# The fields every row a Delta sink appends must carry (``_prev_position`` may be absent).
REQUIRED_COORDINATES = tuple(f for f in COORDINATE_FIELDS if f != "_prev_position")

_REQUIRED_KEYS = frozenset(REQUIRED_COORDINATES)
_DERIVED = ("_offset", "_event_time")
_INTEGER_OFFSET_SOURCES = ("kafka",)


class _SinkError(DataplaneError):
    """A sink's error whose first argument is its whole message, the others its attributes.

    (Beam re-raises a DoFn's error as ``type(err)(args[0] + step, *args[1:])``: errors
    of this shape keep their type through it.)
    """

    def __str__(self) -> str:
        return str(self.args[0])


class MissingCoordinatesError(_SinkError, TypeError):
    """Rows reached a Delta append sink without the coordinates of their source record.

    Attributes:
        step: the pipeline step that produced the rows (it should have kept them).
        missing: the coordinate fields the first such row lacks.
    """

    def __init__(self, message: str, step: str | None, missing: Sequence[str]) -> None:
        super().__init__(message, step, tuple(missing))
        self.step, self.missing = step, list(missing)

    @classmethod
    def of(cls, sink: str, step: str | None, missing: Sequence[str]) -> MissingCoordinatesError:
        fields = ", ".join(repr(name) for name in missing)
        source = f"step {step!r}" if step else "the step before it"
        return cls(
            f"{sink} got rows without the coordinate field(s) {fields} from {source}: it "
            "appends each source record exactly once by them. Make "
            f"{repr(step) if step else 'that step'} keep its input rows' coordinate fields "
            "(transforms.record.COORDINATE_FIELDS; {**row, ...} keeps them), or write rows "
            "made from many records, such as aggregates, with MergeIntoDelta",
            step,
            missing,
        )


class RowsDoNotFitError(_SinkError, ValueError):
    """Rows do not fit the table's schema, and the sink has no dead-letter output.

    Attributes:
        reasons: for each such row, the column at fault and why.
    """

    def __init__(self, message: str, reasons: Sequence[str]) -> None:
        super().__init__(message, tuple(reasons))
        self.reasons = list(reasons)

    @classmethod
    def of(cls, sink: str, reasons: Sequence[str]) -> RowsDoNotFitError:
        return cls(
            f"{sink}: {len(reasons)} row(s) do not fit the table's schema, first: "
            f"{reasons[0]}. Use .with_dead_letters() (or WriteWithDeadLetters) to turn them "
            "into dead letters and commit the rest",
            reasons,
        )


class TableSchemaError(_SinkError, ValueError):
    """The table's schema lacks columns the sink's schema has, and the sink may not add them.

    Attributes:
        columns: the columns the table lacks (nested struct fields as ``a.b``).
    """

    def __init__(self, message: str, columns: Sequence[str]) -> None:
        super().__init__(message, tuple(columns))
        self.columns = list(columns)


def require_coordinates(rows: Iterable[Any], sink: str, step: str | None = None) -> None:
    """Raises MissingCoordinatesError when a row lacks a field of :data:`REQUIRED_COORDINATES`.

    >>> try:
    ...     require_coordinates([{"vehicle_id": "v", "count": 3}], "WriteToDelta('/t')", "Agg")
    ... except MissingCoordinatesError as err:
    ...     print(err.step, err.missing[:2], str(err)[:59])
    Agg ['_record_id', '_source'] WriteToDelta('/t') got rows without the coordinate field(s)
    """
    for row in rows:
        if type(row) is not dict and not isinstance(row, Mapping):
            raise MissingCoordinatesError.of(sink, step, REQUIRED_COORDINATES)
        if not row.keys() >= _REQUIRED_KEYS:
            missing = [name for name in REQUIRED_COORDINATES if name not in row]
            raise MissingCoordinatesError.of(sink, step, missing)


def rows_to_arrow(rows: Iterable[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows carrying coordinate fields → an Arrow table of coordinates + ``schema``.

    Fields of a row that ``schema`` does not name are left out.

    >>> row = {"_record_id": "r", "_source": "kafka", "_stream": "t", "_partition": "0",
    ...        "_position": "9", "_event_time_ms": 0, "text": "hi", "extra": 1}
    >>> rows_to_arrow([row], pa.schema([("text", pa.string())])).column_names[5:]
    ['_offset', '_event_time', '_prev_position', 'text']
    """
    rows = list(rows)
    require_coordinates(rows, "rows_to_arrow")
    return _to_arrow(rows, schema)


def _to_arrow(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
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


@dataclass(frozen=True)
class _Rules:
    """How one sink treats rows and its table's schema."""

    sink: str  # names the sink in messages, e.g. "WriteToDelta('/lake/t')"
    schema_mode: SchemaMode
    step: str | None  # the step whose rows the sink writes
    dead_letters: bool  # rows that do not fit become dead letters (else they raise)


class _CommitBatchDoFn(beam.DoFn):
    def __init__(
        self,
        table_uri: str,
        schema: pa.Schema,
        committer_args: dict[str, Any],
        compaction: CompactionSchedule | None,
        rules: _Rules,
    ) -> None:
        self._table_uri, self._schema, self._committer_args = table_uri, schema, committer_args
        self._schedule, self._rules = compaction, rules
        self._committer: DeltaCommitter | None = None
        self._compaction: ScheduledCompaction | None = None
        self._schema_merged = False
        self._rows = Metrics.counter("dataplane.delta", "rows_written")
        self._skipped = Metrics.counter("dataplane.delta", "rows_already_committed")
        self._commits = Metrics.counter("dataplane.delta", "commits")
        self._empty = Metrics.counter("dataplane.delta", "commits_skipped_as_duplicate")
        self._misfits = Metrics.counter("dataplane.delta", "rows_dead_lettered")

    def setup(self) -> None:
        self._committer = DeltaCommitter(self._table_uri, **self._committer_args)
        if self._schedule is not None:
            options = self._committer_args["storage_options"]
            self._compaction = scheduled_compaction(
                self._table_uri, self._schedule, storage_options=options
            )

    def teardown(self) -> None:
        if self._committer is not None:
            self._committer.close()

    def process(self, keyed_batch: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[Any]:
        rows = list(keyed_batch[1])
        require_coordinates(rows, self._rules.sink, self._rules.step)
        batch, misfits = split_fitting(rows, self._schema, self._convert)
        if misfits and not self._rules.dead_letters:
            raise RowsDoNotFitError.of(self._rules.sink, [reason for _row, reason in misfits])
        if batch is not None:
            yield self._commit(batch)
        for row, reason in misfits:
            self._misfits.inc()
            yield TaggedOutput(
                DEAD_LETTER_TAG,
                row_dead_letter(
                    dict(row), stage="write", error_type=SCHEMA_MISMATCH, message=reason
                ),
            )

    def _convert(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        return _to_arrow(rows, self._schema)

    def _commit(self, batch: pa.Table) -> dict[str, Any]:
        assert self._committer is not None
        # Commits and compactions of this table in this process take turns.
        with table_lock(self._table_uri):
            started = time.monotonic()
            outcome = self._append(batch)
            note_commit(self._table_uri, batch, outcome, time.monotonic() - started)
            if self._compaction is not None and outcome.version is not None:
                self._compaction.run_if_due()
        self._rows.inc(outcome.rows_written)
        self._skipped.inc(outcome.rows_already_committed)
        (self._commits if outcome.version is not None else self._empty).inc()
        return {
            "table": outcome.table_uri,
            "version": outcome.version,
            "rows_written": outcome.rows_written,
            "rows_already_committed": outcome.rows_already_committed,
            "attempts": outcome.attempts,
        }

    def _append(self, batch: pa.Table) -> CommitOutcome:
        assert self._committer is not None
        merge = self._rules.schema_mode == "merge"
        if merge and not self._schema_merged:
            self._merge_schema(batch.schema)
        try:
            return self._committer.commit(batch)
        except SchemaMismatchError:
            added = self._new_columns(batch.schema)
            if not added:
                raise
            if not merge:
                raise TableSchemaError(
                    f"{self._rules.sink}: the table has no column(s) {added} that the sink's "
                    "schema adds; schema_mode='merge' (--schema_mode=merge) adds them",
                    added,
                ) from None
        self._merge_schema(batch.schema)  # the table changed since: merge again
        return self._committer.commit(batch)

    def _merge_schema(self, schema: pa.Schema) -> None:
        table = self._table()
        if table is not None:
            merge_new_columns(table, schema)
        # A table made by this sink's first commit has its schema already.
        self._schema_merged = True

    def _new_columns(self, schema: pa.Schema) -> list[str]:
        table = self._table()
        return [] if table is None else new_columns(pa.schema(table.schema().to_arrow()), schema)

    def _table(self) -> Any:
        return TableHandle(self._table_uri, self._committer_args["storage_options"]).current()


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
        app_id: names this output's checkpoint in the table log.
        storage_options: delta-rs storage options (endpoints, credentials).
        partition_by: partition columns when the table is created.
        batch_size: rows per commit at most (Delta commits cost tens of ms: batch thousands).
        max_batch_latency_s: longest a row waits for its batch to fill in streaming.
        siblings: the pipeline's other tables whose committed records count toward
            this table's source frontier (see :mod:`transforms.checkpoint.frontier`).
        group_offsets: Kafka consumer-group offsets the committing worker moves
            forward after each commit, up to its checkpoint (see
            :class:`~transforms.checkpoint.group_offsets.CommitGroupOffsets`).
        compaction: compact the table (optimize small files, vacuum old ones) at most
            this often, right after one of this sink's commits; None: never. See
            :mod:`transforms.sinks.compaction`.
        schema_mode: ``"strict"``: the table's columns stay as they are, and a schema
            that adds columns to an existing table fails naming them; ``"merge"``:
            columns ``schema`` adds (nullable ones) are added to the table first
            (delta-rs schema merge), older rows read them as null.

    Returns:
        A PCollection of one dict per committed batch: ``table``, ``version`` (None
        when nothing was new), ``rows_written``, ``rows_already_committed``,
        ``attempts``. After :meth:`with_dead_letters`, a pair of that and the dead
        letters of rows that do not fit ``schema``.

    Raises:
        ConfigError: an empty URI or app id, a non-positive batch size or latency, an
            unknown schema mode.
        TableSchemaError: when running with ``schema_mode="strict"``, a schema with
            columns the existing table lacks (the message names them).
        MissingCoordinatesError: when running, rows without their source coordinates
            (the message names the step that dropped them).
        RowsDoNotFitError: when running without :meth:`with_dead_letters`, rows that
            do not fit ``schema`` (the message names the column).

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
        group_offsets: CommitGroupOffsets | None = None,
        compaction: CompactionSchedule | None = None,
        schema_mode: SchemaMode = "strict",
    ) -> None:
        super().__init__()
        if not table_uri:
            raise ConfigError("table_uri", "expected a path or URI, got nothing")
        if schema_mode not in _SCHEMA_MODES:
            raise ConfigError(
                "schema_mode", f"expected one of {', '.join(_SCHEMA_MODES)}, got {schema_mode!r}"
            )
        if not isinstance(schema, pa.Schema):
            raise ConfigError("schema", f"expected a pyarrow.Schema, got {type(schema).__name__}")
        taken = sorted(set(schema.names) & set(COORDINATE_SCHEMA.names))
        if taken:
            raise ConfigError("schema", f"{taken} are the sink's own coordinate columns")
        if not app_id:
            raise ConfigError("app_id", "expected a name for this output's checkpoints")
        self._table_uri, self._schema = table_uri, schema
        self._batching = BatchPolicy(batch_size, max_batch_latency_s)
        self._compaction, self._schema_mode = compaction, schema_mode
        self._dead_letters = False
        self._committer_args = {
            "app_id": app_id,
            "storage_options": storage_options,
            "partition_by": partition_by,
            "siblings": tuple(siblings),
            "group_offsets": group_offsets,
        }

    def with_dead_letters(self) -> WriteToDelta:
        """This sink, returning ``(commits, dead_letters)``.

        A row that does not fit the schema (a value of the wrong type or out of
        range, a null in a column that is not nullable) becomes a
        :class:`~transforms.deadletter.DeadLetter` with stage ``write``, reason
        ``SchemaMismatch`` and the column named in its message; the rest of its batch
        commits. Give the letters to the sibling dead-letter sink (see
        :class:`~transforms.with_dead_letters.WriteWithDeadLetters`), so the
        pipeline's source frontier passes them once they are written there.
        """
        routed = copy.copy(self)
        routed._dead_letters = True
        return routed

    def expand(self, rows: beam.PCollection) -> Any:
        uri = self._table_uri
        step = rows.producer.full_label if rows.producer is not None else None
        rules = _Rules(f"WriteToDelta({uri!r})", self._schema_mode, step, self._dead_letters)
        dofn = _CommitBatchDoFn(uri, self._schema, self._committer_args, self._compaction, rules)
        results = (
            rows
            | "Batch" >> BatchPerTable(uri, self._batching)
            | "Commit" >> beam.ParDo(dofn).with_outputs(DEAD_LETTER_TAG, main="commits")
        )
        if self._dead_letters:
            return results.commits, results[DEAD_LETTER_TAG]
        return results.commits

    def display_data(self) -> dict[str, Any]:
        return {
            "table_uri": self._table_uri,
            "app_id": self._committer_args["app_id"],
            **self._batching.display_data(),
            "compact_every_s": self._compaction.every_s if self._compaction else 0,
            "schema_mode": self._schema_mode,
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
