"""Arrow schemas from a registry subject's Avro or JSON Schema, for the Delta sinks.

A sink needs the Arrow schema of its table's data columns (it adds the coordinate
columns itself, see :func:`~transforms.sinks.delta.rows_to_arrow`). For rows
decoded from a registry subject that schema follows from the subject's own:

============================  =======================================
Avro / JSON Schema            Arrow
============================  =======================================
record / object               struct (top level: the table's columns)
array                         list
map (Avro)                    map<string, values>
union with null / ["T",       the type, nullable
"null"] / not ``required``
int, long / integer           int64
float, double / number        float64
boolean                       bool
string, enum / string, enum   string
bytes / fixed                 binary / fixed-size binary
timestamp-millis, -micros     timestamp[ms|us, UTC] (local-: no zone)
date, time-millis, -micros    date32, time32[ms], time64[us]
decimal                       decimal128 (decimal256 above 38 digits)
============================  =======================================

JSON strings stay strings whatever their ``format`` (decoded values are text).
What has no column type (a union of two types, an object without properties, a
recursive type, a remote ``$ref``) raises :class:`~schemas.errors.ConfigError`
naming its path in the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from schemas.errors import ConfigError

if TYPE_CHECKING:
    from schemas.base import Version

__all__ = ["arrow_schema_of", "avro_to_arrow", "json_schema_to_arrow", "registered_to_arrow"]

_UTC = "UTC"
_AVRO_PRIMITIVES = {
    "boolean": pa.bool_(),
    "int": pa.int64(),
    "long": pa.int64(),
    "float": pa.float64(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}
_AVRO_LOGICAL = {
    "timestamp-millis": pa.timestamp("ms", tz=_UTC),
    "timestamp-micros": pa.timestamp("us", tz=_UTC),
    "timestamp-nanos": pa.timestamp("ns", tz=_UTC),
    "local-timestamp-millis": pa.timestamp("ms"),
    "local-timestamp-micros": pa.timestamp("us"),
    "local-timestamp-nanos": pa.timestamp("ns"),
    "date": pa.date32(),
    "time-millis": pa.time32("ms"),
    "time-micros": pa.time64("us"),
    "uuid": pa.string(),
}
_JSON_PRIMITIVES = {
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
    "string": pa.string(),
}


def arrow_schema_of(
    subject: str, *, version: Version = "latest", registry: Any = None
) -> pa.Schema:
    """The Arrow schema of a registry subject's values (Avro or JSON Schema).

    Args:
        subject: the subject, e.g. ``"tweet"``.
        version: its version; ``"latest"`` by default.
        registry: a :class:`~schemas.SchemaRegistry`; the schemas packaged with this
            library (:class:`~schemas.LocalFileRegistry`) by default.

    Raises:
        ConfigError: the subject or version is unknown, or a part of its schema has
            no column type (the message names its path).

    Example:
        >>> schema = arrow_schema_of("vehicle_telemetry", version=2)
        >>> schema.field("ts").type, schema.field("fuel_level_pct").nullable
        (TimestampType(timestamp[ms, tz=UTC]), True)
        >>> arrow_schema_of("tweet").field("user").type
        StructType(struct<id: string not null, handle: string not null, followers: int64>)
    """
    from schemas.base import SchemaNotFoundError
    from schemas.registry import LocalFileRegistry

    source = registry if registry is not None else LocalFileRegistry()
    try:
        registered = source.get(subject, version)
    except SchemaNotFoundError as err:
        raise ConfigError("schema", f"subject {subject!r} version {version}: {err}") from None
    return registered_to_arrow(registered)


def registered_to_arrow(registered: Any) -> pa.Schema:
    """The Arrow schema of one :class:`~schemas.RegisteredSchema`."""
    if registered.format == "avro":
        return avro_to_arrow(registered.schema, name=registered.subject)
    return json_schema_to_arrow(registered.schema, name=registered.subject)


def avro_to_arrow(schema: Any, *, name: str = "value") -> pa.Schema:
    """The Arrow schema of an Avro record schema: one column per field.

    >>> avro_to_arrow({"type": "record", "name": "R", "fields": [
    ...     {"name": "id", "type": "long"},
    ...     {"name": "tags", "type": {"type": "array", "items": "string"}},
    ...     {"name": "note", "type": ["null", "string"], "default": None}]})
    id: int64 not null
    tags: list<item: string not null> not null
      child 0, item: string not null
    note: string
    >>> avro_to_arrow({"type": "record", "name": "R", "fields": [
    ...     {"name": "v", "type": ["int", "string"]}]})
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: schema: value.v: a union of int, string has no column type
    """
    kind, _nullable = _AvroTypes().convert(schema, name)
    if not pa.types.is_struct(kind):
        raise ConfigError("schema", f"{name}: expected an Avro record, got {_avro_name(schema)}")
    return pa.schema([kind.field(i) for i in range(kind.num_fields)])


def json_schema_to_arrow(schema: Any, *, name: str = "value") -> pa.Schema:
    """The Arrow schema of a JSON Schema object: one column per property.

    >>> json_schema_to_arrow({"type": "object", "required": ["id"], "properties": {
    ...     "id": {"type": "string"}, "n": {"type": ["integer", "null"]},
    ...     "tags": {"type": "array", "items": {"type": "string"}}}})
    id: string not null
    n: int64
    tags: list<item: string not null>
      child 0, item: string not null
    >>> json_schema_to_arrow({"type": "object", "properties": {"meta": {"type": "object"}}},
    ...                      name="e")
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: schema: e.meta: an object without properties has no column type
    """
    if not isinstance(schema, Mapping):
        raise ConfigError("schema", f"{name}: expected a JSON Schema object, got {schema!r}")
    kind, _nullable = _JsonTypes(schema).convert(schema, name)
    if not pa.types.is_struct(kind):
        raise ConfigError("schema", f"{name}: expected an object with properties")
    return pa.schema([kind.field(i) for i in range(kind.num_fields)])


class _AvroTypes:
    """Avro types → (Arrow type, nullable), with the named types seen so far."""

    def __init__(self) -> None:
        self._named: dict[str, Any] = {}
        self._open: set[str] = set()  # records being converted: a reference to one recurses

    def convert(self, schema: Any, path: str) -> tuple[pa.DataType, bool]:
        if isinstance(schema, list):
            return self._union(schema, path)
        if isinstance(schema, str):
            return self._named_or_primitive(schema, path), False
        if not isinstance(schema, Mapping):
            raise ConfigError("schema", f"{path}: {schema!r} is not an Avro type")
        logical = schema.get("logicalType")
        if logical == "decimal":
            return _decimal(schema, path), False
        if logical in _AVRO_LOGICAL:
            return _AVRO_LOGICAL[logical], False
        return self._complex(schema, path), False

    def _union(self, branches: list[Any], path: str) -> tuple[pa.DataType, bool]:
        kinds = [b for b in branches if b != "null"]
        if len(kinds) != 1:
            names = ", ".join(_avro_name(b) for b in kinds) or "null"
            raise ConfigError("schema", f"{path}: a union of {names} has no column type")
        kind, _nullable = self.convert(kinds[0], path)
        return kind, len(kinds) < len(branches)

    def _named_or_primitive(self, name: str, path: str) -> pa.DataType:
        if name in _AVRO_PRIMITIVES:
            return _AVRO_PRIMITIVES[name]
        if name in self._open:
            raise ConfigError("schema", f"{path}: the recursive type {name} has no column type")
        if name not in self._named:
            raise ConfigError("schema", f"{path}: unknown Avro type {name!r}")
        kind, _nullable = self.convert(self._named[name], path)
        return kind

    def _complex(self, schema: Mapping[str, Any], path: str) -> pa.DataType:
        kind = schema.get("type")
        if kind == "record":
            return self._record(schema, path)
        if kind == "enum":
            self._remember(schema)
            return pa.string()
        if kind == "fixed":
            self._remember(schema)
            return pa.binary(int(schema["size"]))
        if kind == "array":
            item, nullable = self.convert(schema.get("items"), f"{path}[]")
            return pa.list_(pa.field("item", item, nullable=nullable))
        if kind == "map":
            value, nullable = self.convert(schema.get("values"), f"{path}{{}}")
            return pa.map_(pa.string(), pa.field("value", value, nullable=nullable))
        return self.convert(kind, path)[0]  # {"type": "string"} and the like

    def _record(self, schema: Mapping[str, Any], path: str) -> pa.DataType:
        names = self._remember(schema)
        self._open.update(names)
        fields = []
        for field in schema.get("fields", []):
            kind, nullable = self.convert(field["type"], f"{path}.{field['name']}")
            fields.append(pa.field(field["name"], kind, nullable=nullable))
        self._open.difference_update(names)
        return pa.struct(fields)

    def _remember(self, schema: Mapping[str, Any]) -> list[str]:
        """Records a named type under its short and full names; returns them."""
        short = str(schema.get("name", ""))
        namespace = schema.get("namespace")
        names = [short, f"{namespace}.{short}"] if namespace and "." not in short else [short]
        for name in names:
            self._named[name] = schema
        return names


def _decimal(schema: Mapping[str, Any], path: str) -> pa.DataType:
    precision, scale = int(schema.get("precision", 0)), int(schema.get("scale", 0))
    if precision <= 0:
        raise ConfigError("schema", f"{path}: a decimal needs a positive precision")
    return (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, scale)


def _avro_name(schema: Any) -> str:
    if isinstance(schema, Mapping):
        return str(schema.get("name") or schema.get("type"))
    return str(schema)


class _JsonTypes:
    """JSON Schema → (Arrow type, nullable); local ``$ref`` resolved against ``root``."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root
        self._open: set[str] = set()

    def convert(self, schema: Any, path: str) -> tuple[pa.DataType, bool]:
        if not isinstance(schema, Mapping):
            raise ConfigError("schema", f"{path}: {schema!r} (any value) has no column type")
        if "$ref" in schema:
            return self._ref(str(schema["$ref"]), path)
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                return self._alternatives(schema[combinator], path, combinator)
        if "allOf" in schema:
            raise ConfigError("schema", f"{path}: allOf has no column type")
        types = schema.get("type")
        listed = types if isinstance(types, list) else [types] if types else []
        kinds = [t for t in listed if t != "null"]
        nullable = len(kinds) < len(listed)
        if not kinds:
            return self._untyped(schema, path), nullable
        if len(kinds) > 1:
            raise ConfigError("schema", f"{path}: a value of types {kinds} has no column type")
        return self._typed(kinds[0], schema, path), nullable

    def _typed(self, kind: str, schema: Mapping[str, Any], path: str) -> pa.DataType:
        if kind == "object":
            return self._object(schema, path)
        if kind == "array":
            items = schema.get("items")
            if not isinstance(items, Mapping):
                raise ConfigError("schema", f"{path}: an array needs one items schema")
            item, nullable = self.convert(items, f"{path}[]")
            return pa.list_(pa.field("item", item, nullable=nullable))
        if kind in _JSON_PRIMITIVES:
            return _JSON_PRIMITIVES[kind]
        raise ConfigError("schema", f"{path}: unknown JSON Schema type {kind!r}")

    def _untyped(self, schema: Mapping[str, Any], path: str) -> pa.DataType:
        if "properties" in schema:
            return self._object(schema, path)
        values = schema.get("enum", [schema["const"]] if "const" in schema else None)
        if values and all(isinstance(v, str) for v in values):
            return pa.string()
        raise ConfigError("schema", f"{path}: a schema without a type has no column type")

    def _object(self, schema: Mapping[str, Any], path: str) -> pa.DataType:
        properties = schema.get("properties")
        if not properties:
            raise ConfigError("schema", f"{path}: an object without properties has no column type")
        required = set(schema.get("required", []))
        fields = []
        for name, sub in properties.items():
            kind, nullable = self.convert(sub, f"{path}.{name}")
            fields.append(pa.field(name, kind, nullable=nullable or name not in required))
        return pa.struct(fields)

    def _alternatives(self, options: Any, path: str, combinator: str) -> tuple[pa.DataType, bool]:
        branches = [o for o in options if not _is_null_schema(o)]
        if len(branches) != 1:
            raise ConfigError("schema", f"{path}: {combinator} of several types has no column type")
        kind, nullable = self.convert(branches[0], path)
        return kind, nullable or len(branches) < len(options)

    def _ref(self, ref: str, path: str) -> tuple[pa.DataType, bool]:
        if ref != "#" and not ref.startswith("#/"):
            raise ConfigError("schema", f"{path}: the remote $ref {ref!r} is not resolved here")
        if ref in self._open:
            raise ConfigError("schema", f"{path}: the recursive $ref {ref!r} has no column type")
        target: Any = self._root
        for part in ref[2:].split("/") if ref != "#" else []:
            if not isinstance(target, Mapping) or part not in target:
                raise ConfigError("schema", f"{path}: $ref {ref!r} points at nothing")
            target = target[part]
        self._open.add(ref)
        try:
            return self.convert(target, path)
        finally:
            self._open.discard(ref)


def _is_null_schema(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "null"
