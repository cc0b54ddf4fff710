"""WriteWithDeadLetters: an output table and its dead-letter table, exactly once together.

Exactly once across two tables needs some wiring: both sinks know each other as
siblings (a record committed in either counts toward the source's frontier), the
dead-letter table's checkpoint goes under its own app id (``<app_id>-dlq``), the
source resumes after the frontier both tables recorded, and Kafka consumer-group
offsets follow the commits. This composite does all of it, and sends rows that do
not fit the output's schema to the dead-letter table too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import apache_beam as beam
import pyarrow as pa

from schemas.errors import ConfigError
from transforms.checkpoint.group_offsets import CommitGroupOffsets
from transforms.checkpoint.log import ResumeFrom, TableRef
from transforms.deadletter import dead_letter_app_id
from transforms.sinks.arrow_schema import arrow_schema_of
from transforms.sinks.compaction import CompactionSchedule
from transforms.sinks.delta import SchemaMode, WriteDeadLettersToDelta, WriteToDelta

if TYPE_CHECKING:
    from schemas.base import SchemaRegistry, Version

__all__ = ["WriteResult", "WriteWithDeadLetters"]


class WriteResult(NamedTuple):
    """What :class:`WriteWithDeadLetters` returns.

    Attributes:
        commits: one dict per commit to the output table (see ``WriteToDelta``).
        dead_letter_commits: one dict per commit to the dead-letter table.
        misfits: the dead letters of rows that did not fit the output's schema
            (stage ``write``, reason ``SchemaMismatch``); they are written already.
    """

    commits: beam.PCollection
    dead_letter_commits: beam.PCollection
    misfits: beam.PCollection


class WriteWithDeadLetters(beam.PTransform):
    """Writes ``(rows, dead_letters)`` to an output table and a dead-letter table.

    Its input is the rows alone, or ``(rows, dead_letters, ...)``: the rows, then
    any number of dead-letter PCollections (one per stage that rejects).

    Every record read lands once, as a row in ``output`` or as a dead letter in
    ``dead_letters``, also across restarts and reruns: the two sinks share their
    source frontier, and a source made by :meth:`read_from_uri` resumes after it
    (and, for Kafka, commits its consumer group's offsets as the tables commit).
    Rows that do not fit ``schema`` become dead letters (stage ``write``); the
    rest of their batch commits.

    Make the source with :meth:`read_from_uri` before applying the sink, or wire
    your own: ``read_from_uri(uri, resume_from=sink.resume_from)`` and
    ``group_offsets=read.group_offsets()`` for Kafka.

    Args:
        output: the output table: a path or ``s3://`` URI.
        dead_letters: the dead-letter table.
        schema: the output's data columns: a ``pyarrow.Schema``, or a registry
            subject (e.g. ``"tweet"``) whose Avro or JSON Schema gives them. Coordinate
            columns are added by the sink.
        app_id: names the pipeline's checkpoint in the tables' logs; the dead-letter
            table's is ``app_id + "-dlq"``.
        version: the subject's version, with a subject ``schema``.
        registry: where a subject's schema comes from; the packaged schemas by default.
        storage_options: delta-rs storage options of both tables.
        partition_by: the output's partition columns when it is created.
        batch_size: rows per commit at most.
        max_batch_latency_s: longest a row waits for its batch in streaming.
        compaction: compact both tables at most this often (None: never).
        schema_mode: ``"strict"`` or ``"merge"`` (add new nullable columns), see
            :class:`~transforms.sinks.delta.WriteToDelta`.
        resume: whether a source made by :meth:`read_from_uri` resumes after what the
            tables hold (else it starts at its configured position; the sinks still
            skip rows already written).
        group_offsets: consumer-group offsets both sinks move forward after each
            commit; a Kafka source made by :meth:`read_from_uri` sets its own.

    Returns:
        A :class:`WriteResult`.

    Raises:
        ConfigError: an empty table URI or app id, the same URI twice, an unknown
            subject, or a schema part without a column type.

    Example:
        >>> import tempfile, apache_beam as beam
        >>> from deltalake import DeltaTable
        >>> from transforms.record import coordinates_of, make_record
        >>> records = [make_record(source="kafka", stream="t", partition=0, position=i,
        ...                        value=b"{}", event_time_ms=0) for i in range(3)]
        >>> rows = [{**coordinates_of(r), "id": str(i), "n": n}
        ...         for i, (r, n) in enumerate(zip(records, [1, "two", 3]))]
        >>> lake = tempfile.mkdtemp()
        >>> sink = WriteWithDeadLetters(f"{lake}/out", f"{lake}/dlq", app_id="demo",
        ...                             schema=pa.schema([("id", pa.string()), ("n", pa.int64())]))
        >>> with beam.Pipeline() as p:
        ...     _ = p | beam.Create(rows) | sink
        >>> sorted(DeltaTable(f"{lake}/out").to_pyarrow_table()["id"].to_pylist())
        ['0', '2']
        >>> DeltaTable(f"{lake}/dlq").to_pyarrow_table().select(["stage", "error_type"]).to_pylist()
        [{'stage': 'write', 'error_type': 'SchemaMismatch'}]
    """

    def __init__(
        self,
        output: str,
        dead_letters: str,
        *,
        schema: pa.Schema | str,
        app_id: str,
        version: Version = "latest",
        registry: SchemaRegistry | None = None,
        storage_options: dict[str, str] | None = None,
        partition_by: list[str] | None = None,
        batch_size: int = 10_000,
        max_batch_latency_s: float = 5.0,
        compaction: CompactionSchedule | None = None,
        schema_mode: SchemaMode = "strict",
        resume: bool = True,
        group_offsets: CommitGroupOffsets | None = None,
    ) -> None:
        super().__init__()
        if not output or not dead_letters:
            raise ConfigError(
                "output" if not output else "dead_letters", "expected a path or URI, got nothing"
            )
        if output == dead_letters:
            raise ConfigError("dead_letters", f"must be another table than output ({output!r})")
        if not app_id:
            raise ConfigError("app_id", "expected a name for the pipeline's checkpoints")
        if isinstance(schema, str):
            schema = arrow_schema_of(schema, version=version, registry=registry)
        self.tables = (TableRef(output, app_id), TableRef(dead_letters, dead_letter_app_id(app_id)))
        self._schema, self._resume, self._group_offsets = schema, resume, group_offsets
        self._storage_options = storage_options
        self._partition_by = partition_by
        self._shared: dict[str, Any] = {
            "storage_options": storage_options,
            "batch_size": batch_size,
            "max_batch_latency_s": max_batch_latency_s,
            "compaction": compaction,
            "schema_mode": schema_mode,
        }
        self.write_rows()  # checks the sinks' own arguments now

    @property
    def schema(self) -> pa.Schema:
        """The output's data columns (derived from the subject, for a subject ``schema``)."""
        return self._schema

    @property
    def group_offsets(self) -> CommitGroupOffsets | None:
        """What both sinks call after each commit (a Kafka source's group-offset commits)."""
        return self._group_offsets

    @property
    def resume_from(self) -> ResumeFrom | None:
        """Where a source of this sink resumes: after both tables' frontier (None: no resume)."""
        return ResumeFrom.of(self.tables, self._storage_options) if self._resume else None

    def read_from_uri(self, uri: str, **kwargs: Any) -> beam.PTransform:
        """A source for ``uri`` (see :func:`transforms.sources.read_from_uri`), wired to this sink.

        It resumes after the frontier of both tables (unless ``resume=False``), and a
        Kafka source's consumer-group offsets follow this sink's commits. Call it
        before applying the sink.

        Raises:
            ConfigError: ``resume_from`` or ``storage_options`` given (the sink's are used).
        """
        from transforms.sources.kafka import ReadFromKafka
        from transforms.sources.uri import read_from_uri

        for name in ("resume_from", "storage_options"):
            if name in kwargs:
                raise ConfigError(name, "the sink sets it; construct the sink with it instead")
        read = read_from_uri(
            uri, resume_from=self.resume_from, storage_options=self._storage_options, **kwargs
        )
        if isinstance(read, ReadFromKafka) and self._group_offsets is None:
            self._group_offsets = read.group_offsets()
        return read

    def write_rows(self) -> WriteToDelta:
        """The output's sink on its own: it returns ``(commits, misfits)``.

        Give the misfits to :meth:`write_dead_letters` with the other dead letters.
        """
        return WriteToDelta(
            self.tables[0].uri,
            schema=self._schema,
            app_id=self.tables[0].app_id,
            partition_by=self._partition_by,
            siblings=self.tables[1:],
            group_offsets=self._group_offsets,
            **self._shared,
        ).with_dead_letters()

    def write_dead_letters(self) -> WriteDeadLettersToDelta:
        """The dead-letter table's sink on its own (all dead letters, misfits included)."""
        return WriteDeadLettersToDelta(
            self.tables[1].uri,
            app_id=self.tables[1].app_id,
            siblings=self.tables[:1],
            group_offsets=self._group_offsets,
            **self._shared,
        )

    def expand(self, inputs: Any) -> WriteResult:
        rows, *earlier = (inputs,) if isinstance(inputs, beam.PCollection) else inputs
        commits, misfits = rows | "WriteRows" >> self.write_rows()
        letters = (*earlier, misfits) | "AllDeadLetters" >> beam.Flatten()
        dead_commits = letters | "WriteDeadLetters" >> self.write_dead_letters()
        return WriteResult(commits, dead_commits, misfits)

    def display_data(self) -> dict[str, Any]:
        return {
            "output": self.tables[0].uri,
            "dead_letters": self.tables[1].uri,
            "app_id": self.tables[0].app_id,
            "resume": self._resume,
            "schema_mode": self._shared["schema_mode"],
        }
