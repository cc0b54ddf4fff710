"""Avro schema resolution as a compatibility check: can a reader schema read a writer's data?

The rules are the Avro specification's "Schema Resolution" section, which is
what Confluent Schema Registry applies (through Avro's Java checker): numeric
promotion, records matched by unqualified name or alias, reader fields missing
from the writer need defaults, enum symbols, unions branch by branch.
"""

from __future__ import annotations

from typing import Any

from fastavro.schema import SchemaParseException, parse_schema

__all__ = ["avro_problems"]

_PROMOTIONS = {
    "int": {"int", "long", "float", "double"},
    "long": {"long", "float", "double"},
    "float": {"float", "double"},
    "double": {"double"},
    "string": {"string", "bytes"},
    "bytes": {"bytes", "string"},
    "boolean": {"boolean"},
    "null": {"null"},
}
_STRUCTURED = ("record", "error", "enum", "fixed", "array", "map")


def avro_problems(reader: Any, writer: Any) -> list[str]:
    """Why data written with ``writer`` cannot be read with ``reader`` (empty if it can).

    >>> v1 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}
    >>> v2 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"},
    ...                                                 {"name": "b", "type": "string"}]}
    >>> avro_problems(v2, v1)
    ["at R.b: reader field 'b' has no default and the writer does not have it"]
    >>> avro_problems(v1, v2)
    []
    """
    try:
        reader_names: dict[str, Any] = {}
        writer_names: dict[str, Any] = {}
        parsed_reader = parse_schema(reader, named_schemas=reader_names, _write_hint=False)
        parsed_writer = parse_schema(writer, named_schemas=writer_names, _write_hint=False)
    except (SchemaParseException, ValueError, TypeError, KeyError) as err:
        return [f"not a valid Avro schema: {err}"]
    return _Resolver(reader_names, writer_names).problems(parsed_reader, parsed_writer, "")


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _type_name(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        return str(schema["type"])
    return str(schema)


class _Resolver:
    def __init__(self, reader_names: dict[str, Any], writer_names: dict[str, Any]) -> None:
        self._reader_names = reader_names
        self._writer_names = writer_names
        self._in_progress: set[tuple[int, int]] = set()

    def problems(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader = self._deref(reader, self._reader_names)
        writer = self._deref(writer, self._writer_names)
        if isinstance(writer, list):
            return self._writer_union(reader, writer, path)
        if isinstance(reader, list):
            return self._reader_union(reader, writer, path)
        key = (id(reader), id(writer))
        if key in self._in_progress:  # a recursive type: assume the cycle holds
            return []
        self._in_progress.add(key)
        try:
            return self._same_kind(reader, writer, path)
        finally:
            self._in_progress.discard(key)

    def _deref(self, schema: Any, names: dict[str, Any]) -> Any:
        while True:
            if isinstance(schema, str) and schema in names:
                schema = names[schema]
            elif isinstance(schema, dict) and schema.get("type") not in _STRUCTURED:
                schema = schema["type"]  # an annotated primitive, e.g. a logical type
            else:
                return schema

    def _writer_union(self, reader: Any, writer: list[Any], path: str) -> list[str]:
        found: list[str] = []
        for branch in writer:
            found += self.problems(reader, branch, path)
        return found

    def _reader_union(self, reader: list[Any], writer: Any, path: str) -> list[str]:
        for branch in reader:
            if not self.problems(branch, writer, path):
                return []
        return [
            f"at {path or 'top level'}: the reader union has no branch for writer type "
            f"{_type_name(writer)}"
        ]

    def _same_kind(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader_type, writer_type = _type_name(reader), _type_name(writer)
        where = path or "top level"
        if writer_type in _PROMOTIONS:
            if reader_type in _PROMOTIONS[writer_type]:
                return []
            return [f"at {where}: writer type {writer_type} cannot be read as {reader_type}"]
        if reader_type != writer_type and {reader_type, writer_type} != {"record", "error"}:
            return [f"at {where}: writer type {writer_type} cannot be read as {reader_type}"]
        if writer_type == "array":
            return self.problems(reader["items"], writer["items"], f"{path}[]")
        if writer_type == "map":
            return self.problems(reader["values"], writer["values"], f"{path}{{}}")
        name_problem = self._name_problem(reader, writer, where)
        if name_problem:
            return [name_problem]
        if writer_type == "fixed":
            return self._fixed(reader, writer, where)
        if writer_type == "enum":
            return self._enum(reader, writer, where)
        return self._record(reader, writer, path)

    def _name_problem(self, reader: dict[str, Any], writer: dict[str, Any], where: str) -> str:
        names = {_short(reader["name"])} | {_short(a) for a in reader.get("aliases", [])}
        if _short(writer["name"]) in names:
            return ""
        return (
            f"at {where}: writer {writer['type']} {_short(writer['name'])!r} does not match "
            f"reader name {_short(reader['name'])!r} or its aliases"
        )

    def _fixed(self, reader: dict[str, Any], writer: dict[str, Any], where: str) -> list[str]:
        if reader["size"] == writer["size"]:
            return []
        return [f"at {where}: fixed size {writer['size']} cannot be read as size {reader['size']}"]

    def _enum(self, reader: dict[str, Any], writer: dict[str, Any], where: str) -> list[str]:
        missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
        if not missing or "default" in reader:
            return []
        return [f"at {where}: the reader enum lacks writer symbols {missing} and has no default"]

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
        writer_fields = {f["name"]: f for f in writer["fields"]}
        found: list[str] = []
        for field in reader["fields"]:
            field_path = f"{path + '.' if path else _short(reader['name']) + '.'}{field['name']}"
            match = next(
                (
                    writer_fields[n]
                    for n in (field["name"], *field.get("aliases", []))
                    if n in writer_fields
                ),
                None,
            )
            if match is not None:
                found += self.problems(field["type"], match["type"], field_path)
            elif "default" not in field:
                found.append(
                    f"at {field_path}: reader field {field['name']!r} has no default and the "
                    "writer does not have it"
                )
        return found
