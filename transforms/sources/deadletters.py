"""ReadDeadLetters: dead letters from a Delta table, back as Records, for replay."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import apache_beam as beam
import pyarrow.compute as pc
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue

from schemas.errors import ConfigError
from transforms.deadletter import REPLAYED_OK
from transforms.record import Record, make_record

__all__ = ["ReadDeadLetters", "letters_to_replay"]


def letters_to_replay(
    table_uri: str,
    *,
    storage_options: dict[str, str] | None = None,
    error_types: Sequence[str] = (),
    stages: Sequence[str] = (),
    include_replayed: bool = False,
) -> Any:
    """The dead-letter rows to replay, as an Arrow table.

    Letters a replay already wrote to the output are left out unless
    ``include_replayed``; ``error_types`` and ``stages`` narrow the choice.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(table_uri, storage_options=storage_options).to_pyarrow_table()
    except TableNotFoundError:
        raise ConfigError("--from", f"no dead-letter table at {table_uri}") from None
    mask = pc.is_valid(table["_record_id"])
    if error_types:
        mask = pc.and_(mask, pc.is_in(table["error_type"], value_set=_strings(error_types)))
    if stages:
        mask = pc.and_(mask, pc.is_in(table["stage"], value_set=_strings(stages)))
    if not include_replayed and "replay_outcome" in table.column_names:
        done = pc.fill_null(pc.equal(table["replay_outcome"], REPLAYED_OK), False)
        mask = pc.and_(mask, pc.invert(done))
    return table.filter(mask)


def _strings(values: Sequence[str]) -> Any:
    import pyarrow as pa

    return pa.array(list(values), pa.string())


class _ReadLettersDoFn(beam.DoFn):
    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._read = Metrics.counter("dataplane.deadletters", "records_read")

    def process(self, table_uri: str) -> Iterator[TimestampedValue]:
        rows = letters_to_replay(table_uri, **self._options).to_pylist()
        for row in rows:
            self._read.inc()
            record = make_record(
                source=row["_source"],
                stream=row["_stream"],
                partition=row["_partition"],
                position=row["_position"],
                key=row["key"],
                value=row["value"],
                headers=[(h["name"], h["value"]) for h in row["headers"] or []],
                event_time_ms=int(row["_event_time"].timestamp() * 1000),
            )
            # prev_position stays None: replays are not part of any partition's chain.
            yield TimestampedValue(record, record.event_time_ms / 1000)


class ReadDeadLetters(beam.PTransform):
    """Reads a dead-letter Delta table back as :class:`~transforms.record.Record` elements.

    Each record keeps its original coordinates, so its ``record_id`` is the one it
    had when it first failed: a sink that already holds it drops it again, and
    replaying twice adds nothing twice.

    Args:
        table_uri: the dead-letter table.
        storage_options: delta-rs storage options.
        error_types: only letters with these reasons (e.g. ``["SchemaViolation"]``).
        stages: only letters from these stages.
        include_replayed: also letters a replay already wrote to the output.

    Example:
        >>> ReadDeadLetters("/tmp/lake/dead_letters", error_types=["NotUtf8"]).display_data()
        {'table_uri': '/tmp/lake/dead_letters', 'error_types': 'NotUtf8', 'stages': '(all)'}
    """

    def __init__(
        self,
        table_uri: str,
        *,
        storage_options: dict[str, str] | None = None,
        error_types: Sequence[str] = (),
        stages: Sequence[str] = (),
        include_replayed: bool = False,
    ) -> None:
        super().__init__()
        if not table_uri:
            raise ConfigError("table_uri", "expected the dead-letter table's path or URI")
        self._uri = table_uri
        self._error_types, self._stages = list(error_types), list(stages)
        self._options: dict[str, Any] = {
            "storage_options": storage_options,
            "error_types": list(error_types),
            "stages": list(stages),
            "include_replayed": include_replayed,
        }

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Table" >> beam.Create([self._uri])
            | "ReadLetters" >> beam.ParDo(_ReadLettersDoFn(self._options)).with_output_types(Record)
        )

    def display_data(self) -> dict[str, Any]:
        return {
            "table_uri": self._uri,
            "error_types": ",".join(self._error_types) or "(all)",
            "stages": ",".join(self._stages) or "(all)",
        }
