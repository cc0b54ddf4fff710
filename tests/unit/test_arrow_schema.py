"""Arrow schemas derived from Avro and JSON Schema subjects (transforms.sinks.arrow_schema)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from schemas.codecs import AvroCodec
from schemas.errors import ConfigError
from schemas.registry import LocalFileRegistry
from transforms.sinks.arrow_schema import arrow_schema_of, avro_to_arrow, json_schema_to_arrow


def _record(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": list(fields), **extra}


def test_avro_types_map_to_their_arrow_types() -> None:
    schema = avro_to_arrow(
        _record(
            {"name": "b", "type": "boolean"},
            {"name": "i", "type": "int"},
            {"name": "l", "type": "long"},
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "s", "type": "string"},
            {"name": "raw", "type": "bytes"},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
            {"name": "fx", "type": {"type": "fixed", "name": "F", "size": 4}},
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "tus", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "lts", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "tm", "type": {"type": "int", "logicalType": "time-millis"}},
            {"name": "tmu", "type": {"type": "long", "logicalType": "time-micros"}},
            {
                "name": "amount",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
            },
            {"name": "m", "type": {"type": "map", "values": "long"}},
        )
    )
    assert [(f.name, f.type, f.nullable) for f in schema] == [
        ("b", pa.bool_(), False),
        ("i", pa.int64(), False),
        ("l", pa.int64(), False),
        ("f", pa.float64(), False),
        ("d", pa.float64(), False),
        ("s", pa.string(), False),
        ("raw", pa.binary(), False),
        ("e", pa.string(), False),
        ("fx", pa.binary(4), False),
        ("ts", pa.timestamp("ms", tz="UTC"), False),
        ("tus", pa.timestamp("us", tz="UTC"), False),
        ("lts", pa.timestamp("ms"), False),
        ("day", pa.date32(), False),
        ("tm", pa.time32("ms"), False),
        ("tmu", pa.time64("us"), False),
        ("amount", pa.decimal128(10, 2), False),
        ("m", pa.map_(pa.string(), pa.field("value", pa.int64(), nullable=False)), False),
    ]


def test_avro_records_nest_as_structs_and_named_types_are_reused() -> None:
    point = {"type": "record", "name": "Point", "fields": [{"name": "x", "type": "double"}]}
    schema = avro_to_arrow(
        _record(
            {"name": "start", "type": point},
            {"name": "end", "type": ["null", "Point"]},
            {"name": "path", "type": {"type": "array", "items": ["Point", "null"]}},
        )
    )
    struct = pa.struct([pa.field("x", pa.float64(), nullable=False)])
    assert schema.field("start").type == struct and not schema.field("start").nullable
    assert schema.field("end").type == struct and schema.field("end").nullable
    assert schema.field("path").type == pa.list_(pa.field("item", struct, nullable=True))


def test_decoded_avro_values_fit_the_derived_schema() -> None:
    avro = _record(
        {"name": "id", "type": "string"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {
            "name": "amount",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
        },
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "note", "type": ["null", "string"], "default": None},
    )
    value = {
        "id": "a",
        "ts": dt.datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=dt.timezone.utc),
        "day": dt.date(2026, 1, 2),
        "amount": decimal.Decimal("12.34"),
        "tags": ["x"],
        "note": None,
    }
    codec = AvroCodec(avro)
    decoded = codec.decode(codec.encode(value))

    table = pa.Table.from_pylist([decoded], schema=avro_to_arrow(avro))

    assert table.to_pylist() == [value]


def test_packaged_subjects_derive_their_schemas() -> None:
    telemetry = arrow_schema_of("vehicle_telemetry", version=2)
    assert telemetry.names == [
        "vehicle_id",
        "ts",
        "speed_kph",
        "engine_temp_c",
        "lat",
        "lon",
        "fuel_level_pct",
    ]
    assert telemetry.field("fuel_level_pct").nullable and not telemetry.field("lat").nullable
    tweet = arrow_schema_of("tweet")
    assert tweet.field("id").type == pa.string() and not tweet.field("id").nullable
    assert tweet.field("lang").nullable  # not required
    assert tweet.field("hashtags").type == pa.list_(pa.field("item", pa.string(), False))
    assert tweet.field("retweet_count").type == pa.int64()


def test_a_registry_over_a_users_directory_is_used(tmp_path: Path) -> None:
    (tmp_path / "order").mkdir()
    (tmp_path / "order" / "1.json").write_text(
        '{"type": "object", "required": ["sku"], "properties": {"sku": {"type": "string"},'
        ' "qty": {"type": "integer"}}}'
    )
    schema = arrow_schema_of("order", registry=LocalFileRegistry(tmp_path))
    assert [(f.name, f.type, f.nullable) for f in schema] == [
        ("sku", pa.string(), False),
        ("qty", pa.int64(), True),
    ]


def test_json_schema_nullability_refs_and_enums() -> None:
    schema = json_schema_to_arrow(
        {
            "type": "object",
            "required": ["a", "b", "c"],
            "$defs": {"money": {"type": "object", "properties": {"cents": {"type": "integer"}}}},
            "properties": {
                "a": {"type": ["number", "null"]},  # required but nullable
                "b": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
                "c": {"enum": ["red", "green"]},
                "price": {"$ref": "#/$defs/money"},
                "when": {"type": "string", "format": "date-time"},
            },
        }
    )
    assert [(f.name, f.type, f.nullable) for f in schema] == [
        ("a", pa.float64(), True),
        ("b", pa.bool_(), True),
        ("c", pa.string(), False),
        ("price", pa.struct([("cents", pa.int64())]), True),
        ("when", pa.string(), True),
    ]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"type": "object", "properties": {"v": {"type": ["string", "integer"]}}},
            r"schema: value\.v: a value of types \['string', 'integer'\] has no column type",
        ),
        (
            {"type": "object", "properties": {"u": {"type": "object", "properties": {"x": {}}}}},
            r"schema: value\.u\.x: a schema without a type has no column type",
        ),
        (
            {"type": "object", "properties": {"l": {"type": "array"}}},
            r"schema: value\.l: an array needs one items schema",
        ),
        (
            {"type": "object", "properties": {"r": {"$ref": "other.json#/x"}}},
            r"schema: value\.r: the remote \$ref 'other\.json#/x' is not resolved here",
        ),
        (
            {"type": "object", "properties": {"n": {"$ref": "#"}}},
            r"schema: value\.n\.n: the recursive \$ref '#' has no column type",
        ),
        (
            {
                "type": "object",
                "properties": {"o": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
            },
            r"schema: value\.o: oneOf of several types has no column type",
        ),
        ({"type": "string"}, r"schema: value: expected an object with properties"),
    ],
)
def test_json_schema_parts_without_a_column_type_are_named(schema: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        json_schema_to_arrow(schema)


def test_a_recursive_json_ref_is_named() -> None:
    schema = {
        "type": "object",
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        "properties": {"head": {"$ref": "#/$defs/node"}},
    }
    with pytest.raises(
        ConfigError, match=r"value\.head\.next: the recursive \$ref '#/\$defs/node'"
    ):
        json_schema_to_arrow(schema)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            _record({"name": "v", "type": ["null", "int", "string"]}),
            r"schema: value\.v: a union of int, string has no column type",
        ),
        (
            _record(
                {
                    "name": "next",
                    "type": ["null", "R"],
                }
            ),
            r"schema: value\.next: the recursive type R has no column type",
        ),
        (
            _record({"name": "ref", "type": "other.Thing"}),
            r"schema: value\.ref: unknown Avro type 'other\.Thing'",
        ),
        (
            _record({"name": "d", "type": {"type": "bytes", "logicalType": "decimal"}}),
            r"schema: value\.d: a decimal needs a positive precision",
        ),
        ("string", r"schema: value: expected an Avro record, got string"),
    ],
)
def test_avro_parts_without_a_column_type_are_named(schema: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        avro_to_arrow(schema)


def test_an_unknown_subject_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="schema: subject 'nope' version latest"):
        arrow_schema_of("nope")
