"""Which rows fit a table's Arrow schema, and why the others do not.

A sink converts a batch of rows to Arrow at once. When that fails (a value of
the wrong type, out of range, a null in a column that is not nullable), one row
must not sink the whole batch: :func:`split_fitting` finds the rows that do not
fit and names the column at fault for each, so the sink can turn them into
dead letters and commit the rest.

The whole batch is checked first (one Arrow conversion, vectorised null checks);
rows are looked at one by one only when that finds a problem.

Arrow itself lets some values through that the table would then hold wrongly: a
float with a fraction in an integer column (Arrow truncates it), a string in a
list column (Arrow splits it into characters), key-value pairs in a struct column,
and a null in a column that is not nullable (Arrow converts it; Delta refuses the
whole commit). All of them are misfits here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["SCHEMA_MISMATCH", "misfit", "split_fitting"]

# The dead-letter reason of a row that does not fit its table's schema.
SCHEMA_MISMATCH = "SchemaMismatch"

_CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError)
Row = Mapping[str, Any]


def misfit(row: Row, schema: pa.Schema) -> str | None:
    """Why ``row`` does not fit ``schema`` (the column named first), or None when it fits.

    Fields of the row that ``schema`` does not name are ignored.

    >>> schema = pa.schema([pa.field("id", pa.string(), nullable=False), ("n", pa.int8()),
    ...                     ("user", pa.struct([pa.field("handle", pa.string(), False)]))])
    >>> misfit({"id": "a", "n": 3, "extra": object()}, schema) is None
    True
    >>> misfit({"id": "a", "n": 300}, schema)
    "column 'n': Value 300 too large to fit in C integer type"
    >>> misfit({"n": 3}, schema)
    "column 'id': missing, and the column is not nullable"
    >>> misfit({"id": "a", "n": 2.5}, schema)
    "column 'n': 2.5 has a fraction, the column holds int8"
    >>> misfit({"id": "a", "user": {}}, schema)
    "column 'user.handle': missing, and the column is not nullable"
    """
    for field in schema:
        reason = _misfit_value(row.get(field.name), field, field.name)
        if reason is not None:
            return f"column {reason}"
    return None


def split_fitting(
    rows: Sequence[Row],
    schema: pa.Schema,
    convert: Callable[[Sequence[Row]], pa.Table],
) -> tuple[pa.Table | None, list[tuple[Row, str]]]:
    """``rows`` converted by ``convert``, less those that do not fit ``schema``.

    Args:
        rows: the batch.
        schema: the data columns the rows must fit.
        convert: turns rows into the Arrow table to write (e.g. adding coordinate
            columns); it must raise when a row does not convert.

    Returns:
        The table of the rows that fit (None when none does) and each other row with
        the reason it does not, in batch order.

    >>> schema = pa.schema([("n", pa.int64())])
    >>> convert = lambda rows: pa.Table.from_pylist(list(rows), schema=schema)
    >>> table, misfits = split_fitting([{"n": 1}, {"n": "two"}, {"n": 3}], schema, convert)
    >>> table["n"].to_pylist(), [row for row, _reason in misfits]
    ([1, 3], [{'n': 'two'}])
    >>> misfits[0][1]
    "column 'n': Could not convert 'two' with type str: tried to convert to int64"
    """
    if not rows:
        return None, []
    try:
        table: pa.Table | None = convert(rows)
    except _CONVERSION_ERRORS:
        table = None
    if table is not None and not _lossy(rows, schema, table):
        return table, []
    fitting, misfits = [], []
    for row in rows:
        reason = misfit(row, schema)
        if reason is None:
            fitting.append(row)
        else:
            misfits.append((row, reason))
    return (convert(fitting) if fitting else None), misfits


def _lossy(rows: Sequence[Row], schema: pa.Schema, table: pa.Table) -> bool:
    """Whether the converted ``table`` hides a misfit: a forbidden null or a truncated float."""
    for field in schema:
        if field.name in table.column_names:
            column = table[field.name].combine_chunks()
            if _forbidden_nulls(column, field):
                return True
        values = [row.get(field.name) for row in rows] if _needs_walk(field.type) else []
        if values and _converted_wrongly(values, field.type):
            return True
    return False


def _forbidden_nulls(array: pa.Array, field: pa.Field) -> bool:
    """Whether ``array`` holds a null where ``field`` (or a field nested in it) forbids one."""
    if not field.nullable and array.null_count > 0:
        return True
    kind = field.type
    if pa.types.is_struct(kind):
        valid = pc.is_valid(array)
        for index in range(kind.num_fields):
            child_field = kind.field(index)
            child = array.field(index)
            if not child_field.nullable and pc.any(pc.and_(pc.is_null(child), valid)).as_py():
                return True
            if _forbidden_nulls(child.filter(valid), child_field):
                return True
        return False
    if _is_list(kind):
        return _forbidden_nulls(array.flatten(), kind.value_field)
    return False


def _is_list(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def _needs_walk(kind: pa.DataType) -> bool:
    """Whether values of ``kind`` can convert without error yet wrongly (see the module)."""
    return bool(pa.types.is_integer(kind) or pa.types.is_struct(kind) or _is_list(kind))


def _converted_wrongly(values: list[Any], kind: pa.DataType) -> bool:
    """Whether Arrow converts one of ``values`` (of type ``kind``) into something else."""
    present = [v for v in values if v is not None]
    if pa.types.is_integer(kind):
        return any(
            type(v) is not int and isinstance(v, float) and not v.is_integer() for v in present
        )
    if pa.types.is_struct(kind):
        if not all(type(v) is dict or isinstance(v, Mapping) for v in present):
            return True
        fields = [kind.field(i) for i in range(kind.num_fields)]
        return any(
            _converted_wrongly([v.get(f.name) for v in present], f.type)
            for f in fields
            if _needs_walk(f.type)
        )
    if _is_list(kind):
        if not all(type(v) is list or isinstance(v, (list, tuple)) for v in present):
            return True
        if not _needs_walk(kind.value_type):
            return False
        return _converted_wrongly([item for v in present for item in v], kind.value_type)
    return False


def _misfit_value(value: Any, field: pa.Field, path: str) -> str | None:
    """``"'path': reason"`` when ``value`` does not fit ``field``; None when it does."""
    if value is None:
        return None if field.nullable else f"{path!r}: missing, and the column is not nullable"
    kind = field.type
    if pa.types.is_struct(kind) and not isinstance(value, Mapping):
        return f"{path!r}: expected a mapping for a struct, got {type(value).__name__}"
    if _is_list(kind) and not isinstance(value, (list, tuple)):
        return f"{path!r}: expected a list, got {type(value).__name__}"
    if pa.types.is_struct(kind):
        for index in range(kind.num_fields):
            child = kind.field(index)
            reason = _misfit_value(value.get(child.name), child, f"{path}.{child.name}")
            if reason is not None:
                return reason
        return None
    if _is_list(kind):
        for item in value:
            reason = _misfit_value(item, kind.value_field, f"{path}[]")
            if reason is not None:
                return reason
        return _converts(value, kind, path)
    if pa.types.is_integer(kind) and isinstance(value, float) and not value.is_integer():
        return f"{path!r}: {value!r} has a fraction, the column holds {kind}"
    return _converts(value, kind, path)


def _converts(value: Any, kind: pa.DataType, path: str) -> str | None:
    try:
        pa.array([value], type=kind)
    except _CONVERSION_ERRORS as err:
        return f"{path!r}: {err}"
    return None
