"""Sinks dead-letter rows that do not fit the table's schema, and name what is wrong."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import ConfigError
from tests.helpers import collect
from transforms.record import coordinates_of, make_record, originals_of
from transforms.sinks.delta import (
    MissingCoordinatesError,
    RowsDoNotFitError,
    TableSchemaError,
    WriteToDelta,
)
from transforms.sinks.fit import misfit, split_fitting

SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        ("n", pa.int8()),
        ("x", pa.float64()),
        ("tags", pa.list_(pa.string())),
        ("user", pa.struct([pa.field("handle", pa.string(), nullable=False), ("age", pa.int16())])),
    ]
)


def _row(position: int, **values: Any) -> dict[str, Any]:
    """A decoded row as DecodeAndValidate makes it: coordinates, originals, values."""
    record = make_record(
        source="kafka",
        stream="t",
        partition=0,
        position=position,
        value=f"raw-{position}".encode(),
        key=b"k",
        headers=[("h", b"v")],
        event_time_ms=1000 + position,
        prev_position="start" if position == 0 else str(position - 1),
    )
    return {**coordinates_of(record), **originals_of(record), **values}


def _write(rows: list[dict[str, Any]], uri: str, **kwargs: Any) -> list[Any]:
    """Runs rows through WriteToDelta(...).with_dead_letters(); returns the dead letters."""
    sink = WriteToDelta(uri, schema=SCHEMA, app_id="t", **kwargs).with_dead_letters()
    _commits, letters = collect(lambda p: p | beam.Create(rows) | sink)
    return letters


def test_a_row_that_does_not_fit_becomes_a_write_dead_letter_and_the_rest_commits(
    tmp_path: Path,
) -> None:
    rows = [_row(i, id=f"r{i}", n=i) for i in range(5)]
    rows[2]["n"] = 300  # out of int8's range
    rows[3]["user"] = {"age": 4}  # user.handle is not nullable

    letters = _write(rows, str(tmp_path))

    table = DeltaTable(str(tmp_path)).to_pyarrow_table()
    assert sorted(table["id"].to_pylist()) == ["r0", "r1", "r4"]
    by_position = {letter.record.position: letter for letter in letters}
    assert sorted(by_position) == ["2", "3"]
    assert {(d.stage, d.error_type) for d in letters} == {("write", "SchemaMismatch")}
    assert by_position["2"].message.startswith("column 'n': ")
    assert by_position["3"].message == (
        "column 'user.handle': missing, and the column is not nullable"
    )
    bad = by_position["2"].record  # the original message: coordinates and bytes
    assert (bad.value, bad.key, bad.headers[0].name, bad.record_id) == (
        b"raw-2",
        b"k",
        "h",
        rows[2]["_record_id"],
    )


def test_without_a_dead_letter_output_a_misfit_fails_naming_the_column(tmp_path: Path) -> None:
    rows = [_row(0, id="a", x="not a number")]
    sink = WriteToDelta(str(tmp_path), schema=SCHEMA, app_id="t")
    with pytest.raises(RowsDoNotFitError, match=r"1 row\(s\) do not fit .* column 'x'"):
        collect(lambda p: p | beam.Create(rows) | sink)


def test_rows_without_coordinates_name_the_step_that_dropped_them(tmp_path: Path) -> None:
    sink = WriteToDelta(str(tmp_path), schema=SCHEMA, app_id="t")
    with pytest.raises(MissingCoordinatesError, match=r"from step 'PerVehicle'.*MergeIntoDelta"):
        collect(
            lambda p: (
                p
                | beam.Create([("v1", 3)])
                | "PerVehicle" >> beam.Map(lambda kv: {"id": kv[0], "n": kv[1]})
                | sink
            )
        )


def test_a_strict_sink_names_the_columns_its_schema_adds(tmp_path: Path) -> None:
    narrow = pa.schema([pa.field("id", pa.string(), nullable=False)])
    with beam.Pipeline() as p:
        _ = (
            p
            | beam.Create([_row(0, id="a")])
            | WriteToDelta(str(tmp_path), schema=narrow, app_id="t")
        )
    with pytest.raises(
        TableSchemaError, match=r"no column\(s\) \['n', 'x', 'tags', 'user'\].*merge"
    ):
        _write([_row(1, id="b")], str(tmp_path))


def test_schema_mode_merge_adds_the_new_nullable_columns(tmp_path: Path) -> None:
    narrow = pa.schema([pa.field("id", pa.string(), nullable=False)])
    with beam.Pipeline() as p:
        _ = (
            p
            | beam.Create([_row(0, id="a")])
            | WriteToDelta(str(tmp_path), schema=narrow, app_id="t")
        )

    letters = _write(
        [_row(1, id="b", n=7, user={"handle": "h"})], str(tmp_path), schema_mode="merge"
    )

    table = DeltaTable(str(tmp_path)).to_pyarrow_table().sort_by("id")
    assert letters == []
    assert table.select(["id", "n"]).to_pylist() == [{"id": "a", "n": None}, {"id": "b", "n": 7}]
    assert table["user"].to_pylist() == [None, {"handle": "h", "age": None}]


def test_an_unknown_schema_mode_is_refused() -> None:
    with pytest.raises(
        ConfigError, match="schema_mode: expected one of strict, merge, got 'evolve'"
    ):
        WriteToDelta("/tmp/t", schema=SCHEMA, app_id="t", schema_mode="evolve")  # type: ignore[arg-type]


def test_a_schema_naming_a_coordinate_column_is_refused() -> None:
    schema = pa.schema([("_offset", pa.int64()), ("text", pa.string())])
    with pytest.raises(ConfigError, match=r"schema: \['_offset'\] are the sink's own coordinate"):
        WriteToDelta("/tmp/t", schema=schema, app_id="t")


def test_a_schema_that_is_not_arrow_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"schema: expected a pyarrow\.Schema, got str"):
        WriteToDelta("/tmp/t", schema="tweet", app_id="t")


# Values of every kind, fitting or not: the property below holds whatever they are.
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-200, max_value=200),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([2.0, 2.5, -1.0]),
    st.text(max_size=5),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["handle", "age", "other"]), inner, max_size=3),
    ),
    max_leaves=6,
)


def _mostly(fitting: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values that fit three times in four, anything else otherwise."""
    return st.one_of(fitting, fitting, fitting, _VALUES)


_USERS = st.fixed_dictionaries(
    {"handle": _mostly(st.text(max_size=4))},
    optional={"age": _mostly(st.integers(-(2**15), 2**15 - 1)), "other": _VALUES},
)
_ROWS = st.lists(
    st.fixed_dictionaries(
        {"id": _mostly(st.text(max_size=4))},
        optional={
            "n": _mostly(st.integers(-128, 127)),
            "x": _mostly(st.floats(allow_nan=False)),
            "tags": _mostly(st.lists(st.text(max_size=3), max_size=3)),
            "user": _mostly(_USERS),
            "extra": _VALUES,
        },
    ),
    max_size=8,
)


def _expected(value: Any, kind: pa.DataType) -> Any:
    """``value`` as Arrow should give it back when it fits (absent struct fields: None)."""
    if pa.types.is_struct(kind) and isinstance(value, dict):
        return {f.name: _expected(value.get(f.name), f.type) for f in kind}
    if pa.types.is_list(kind) and isinstance(value, list):
        return [_expected(item, kind.value_type) for item in value]
    return value


def _fits_alone(row: dict[str, Any]) -> bool:
    """The oracle: Arrow converts the row alone, gives back what it was given, and no
    null sits where a field forbids it (Arrow itself converts those)."""
    try:
        converted = pa.Table.from_pylist([row], schema=SCHEMA).to_pylist()[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        return False
    wanted = {f.name: _expected(row.get(f.name), f.type) for f in SCHEMA}
    same = all(converted[name] == wanted[name] for name in wanted)
    user = converted["user"]
    return same and converted["id"] is not None and (user is None or user["handle"] is not None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ROWS)
def test_every_row_lands_once_in_the_table_or_as_a_misfit(rows: list[dict[str, Any]]) -> None:
    def convert(batch: Any) -> pa.Table:
        return pa.Table.from_pylist(list(batch), schema=SCHEMA)

    rows = [{**row, "_i": i} for i, row in enumerate(rows)]  # _i: not a column
    table, misfits = split_fitting(rows, SCHEMA, convert)

    rejected = [bad["_i"] for bad, _reason in misfits]
    assert rejected == sorted(set(rejected))  # each once, in batch order
    fitting = [row for row in rows if row["_i"] not in rejected]
    assert (table.num_rows if table is not None else 0) + len(rejected) == len(rows)
    if table is not None:
        assert table.to_pylist() == pa.Table.from_pylist(fitting, schema=SCHEMA).to_pylist()
    for row in fitting:
        assert _fits_alone(row), row
    for bad, reason in misfits:
        assert not _fits_alone(dict(bad)), (bad, reason)
        assert reason == misfit(bad, SCHEMA)
        assert reason.split("'")[1].split(".")[0].split("[")[0] in SCHEMA.names


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_ROWS.filter(bool))
def test_through_the_sink_every_row_is_once_in_the_table_or_a_dead_letter(
    values: list[dict[str, Any]],
) -> None:
    rows = [_row(position, **value) for position, value in enumerate(values)]
    with tempfile.TemporaryDirectory() as uri:
        letters = _write(rows, uri, batch_size=3)
        table_ids = []
        if Path(uri, "_delta_log").exists():
            table_ids = DeltaTable(uri).to_pyarrow_table()["_record_id"].to_pylist()
    letter_ids = [letter.record.record_id for letter in letters]
    assert sorted(table_ids + letter_ids) == sorted(row["_record_id"] for row in rows)
    assert {(d.stage, d.error_type) for d in letters} <= {("write", "SchemaMismatch")}
    assert sorted(letter_ids) == sorted(r["_record_id"] for r in rows if misfit(r, SCHEMA))
