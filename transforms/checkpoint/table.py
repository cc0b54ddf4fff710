"""A Delta table handle refreshed incrementally, the backoff after a lost commit race,
and additive schema evolution (delta-rs schema merge)."""

from __future__ import annotations

import random
import time

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

__all__ = ["TableHandle", "backoff_after_conflict", "merge_new_columns", "new_columns"]


class TableHandle:
    """One Delta table, loaded once and then refreshed incrementally; None until it exists."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None) -> None:
        self.uri, self._options = uri, storage_options
        self._table: DeltaTable | None = None

    def current(self) -> DeltaTable | None:
        """The table at its latest version, or None when there is no table yet."""
        if self._table is not None:
            self._table.update_incremental()
            return self._table
        try:
            self._table = DeltaTable(self.uri, storage_options=self._options)
        except TableNotFoundError:
            return None
        return self._table

    def forget(self) -> None:
        """Drops the loaded table: the next ``current()`` loads it afresh."""
        self._table = None


def backoff_after_conflict(attempt: int) -> None:
    """Sleeps before retrying a commit that lost to a concurrent one (jittered, capped)."""
    time.sleep(min(0.05 * 2**attempt, 2.0) * random.uniform(0.5, 1.0))


def new_columns(table: pa.Schema, wanted: pa.Schema) -> list[str]:
    """Columns of ``wanted`` that ``table`` lacks, nested struct fields as ``a.b``.

    Types are not compared (Delta stores some types differently, e.g. timestamps
    in microseconds): only names that are new count.

    >>> table = pa.schema([("a", pa.int64()), ("u", pa.struct([("id", pa.string())]))])
    >>> wanted = pa.schema([("a", pa.int32()), ("b", pa.string()),
    ...                     ("u", pa.struct([("id", pa.string()), ("handle", pa.string())]))])
    >>> new_columns(table, wanted)
    ['b', 'u.handle']
    """
    return _new_fields(list(table), list(wanted), "")


def _new_fields(have: list[pa.Field], wanted: list[pa.Field], prefix: str) -> list[str]:
    known = {field.name: field.type for field in have}
    found = []
    for field in wanted:
        path = f"{prefix}{field.name}"
        if field.name not in known:
            found.append(path)
            continue
        inner_have, inner_wanted = _struct_fields(known[field.name]), _struct_fields(field.type)
        found += _new_fields(inner_have, inner_wanted, f"{path}.")
    return found


def _struct_fields(kind: pa.DataType) -> list[pa.Field]:
    """The fields of a struct, or of the structs a list holds; none for other types."""
    while pa.types.is_list(kind) or pa.types.is_large_list(kind):
        kind = kind.value_type
    return [kind.field(i) for i in range(kind.num_fields)] if pa.types.is_struct(kind) else []


def merge_new_columns(table: DeltaTable, schema: pa.Schema) -> list[str]:
    """Adds the columns of ``schema`` that ``table`` lacks; returns them (empty: none).

    This is delta-rs's schema merge (``schema_mode="merge"``) on an append of no
    rows: one commit that changes the table's schema only. Rows written before
    read the new columns as null.

    Example:
        >>> import tempfile
        >>> uri = tempfile.mkdtemp()
        >>> write_deltalake(uri, pa.table({"a": [1]}))
        >>> merge_new_columns(DeltaTable(uri), pa.schema([("a", pa.int64()), ("b", pa.string())]))
        ['b']
        >>> DeltaTable(uri).to_pyarrow_table().to_pylist()
        [{'a': 1, 'b': None}]
    """
    current = pa.schema(table.schema().to_arrow())
    added = new_columns(current, schema)
    if added:
        write_deltalake(table, schema.empty_table(), mode="append", schema_mode="merge")
    return added
