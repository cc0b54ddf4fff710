"""Payload codecs: Avro (fastavro, with writer/reader schema resolution) and JSON Schema.

A codec turns payload bytes into a validated Python value or raises
:class:`DecodeError` carrying a stable dead-letter reason. Codecs are built once
per schema (parsing and compiling are the expensive part) and are then cheap per
record.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
import struct
from typing import Any, Protocol

import fastavro
import fastjsonschema
from fastavro.read import SchemaResolutionError

from schemas.base import RegisteredSchema
from schemas.errors import DataplaneError
from schemas.wire import frame

__all__ = [
    "AvroCodec",
    "Codec",
    "DecodeError",
    "JsonCodec",
    "codec_for",
    "encode_framed",
    "parse_avro",
]


class DecodeError(DataplaneError, ValueError):
    """A payload does not decode or does not satisfy its schema.

    Attributes:
        reason: the dead-letter reason, e.g. ``"SchemaViolation"``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Codec(Protocol):
    """Decodes and encodes payloads of one schema (no framing)."""

    def decode(self, payload: bytes | memoryview) -> Any:
        """The value in ``payload``; raises :class:`DecodeError` when it is bad."""

    def encode(self, value: Any) -> bytes:
        """``value`` as payload bytes; raises ``ValueError`` when it breaks the schema."""


def parse_avro(schema: Any) -> Any:
    """A fastavro-parsed schema, with its own table of named types.

    Raises:
        fastavro.schema.SchemaParseException: when ``schema`` is not valid Avro.
    """
    return fastavro.parse_schema(schema, named_schemas={})


class AvroCodec:
    """Avro binary payloads, resolved from the writer's schema to the reader's.

    Args:
        writer: the schema the payload was written with (from the frame's id).
        reader: the schema the pipeline wants values in; the writer's when omitted.
            Fields the reader adds take their defaults; fields it lacks are skipped.

    Example:
        >>> v1 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}
        >>> v2 = {"type": "record", "name": "R", "fields": [
        ...     {"name": "a", "type": "long"}, {"name": "b", "type": "string", "default": "-"}]}
        >>> AvroCodec(v1, reader=v2).decode(AvroCodec(v1).encode({"a": 5}))
        {'a': 5, 'b': '-'}
    """

    def __init__(self, writer: Any, reader: Any = None) -> None:
        self._writer = parse_avro(writer)
        self._reader = parse_avro(reader) if reader is not None else None

    def decode(self, payload: bytes | memoryview) -> Any:
        buffer = io.BytesIO(payload)
        try:
            value = fastavro.schemaless_reader(buffer, self._writer, self._reader)
        except SchemaResolutionError as err:
            raise DecodeError(
                "IncompatibleSchema", f"cannot resolve writer to reader: {err}"
            ) from None
        except (EOFError, StopIteration, struct.error) as err:
            raise DecodeError(
                "TruncatedPayload", f"the Avro payload ended early: {err!r}"
            ) from None
        except (ValueError, IndexError, KeyError, TypeError, OverflowError, MemoryError) as err:
            raise DecodeError("CorruptPayload", f"the Avro payload is corrupt: {err!r}") from None
        left = len(payload) - buffer.tell()
        if left:
            raise DecodeError("CorruptPayload", f"{left} bytes left after the Avro record")
        return value

    def encode(self, value: Any) -> bytes:
        buffer = io.BytesIO()
        fastavro.schemaless_writer(buffer, self._writer, value)
        return buffer.getvalue()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class _Unrepresentable(ValueError):
    """JSON that Python reads but no column, coder or UTF-8 text can hold."""


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _int64(literal: str) -> int:
    value = int(literal)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _Unrepresentable(f"the integer {literal[:40]} does not fit in 64 bits")
    return value


def _finite(literal: str) -> float:
    value = float(literal)
    if value in (math.inf, -math.inf):
        raise _Unrepresentable(f"the number {literal[:40]} is too large for a 64-bit float")
    return value


# Built once: json.loads with keyword arguments builds a new decoder per call.
_STRICT_JSON = json.JSONDecoder(
    parse_constant=_reject_constant, parse_int=_int64, parse_float=_finite
)
# A \uD800-\uDFFF escape in the text: the only way JSON can spell a lone surrogate,
# which Python keeps in a str that no UTF-8 encoder (Beam's coders, Arrow) accepts.
# Pairs are common (emoji from ASCII-only encoders) and fine: the walk decides.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(text: str) -> str:
    """``text`` with what UTF-8 cannot hold escaped (``\\udc00``)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """Where in a decoded JSON value a string holds a lone surrogate (None: nowhere)."""
    if isinstance(value, str):
        return path if _SURROGATE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _SURROGATE.search(key):
                return f"{where} (the name)"
            found = _lone_surrogate_at(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


@functools.lru_cache(maxsize=256)
def _compiled(schema_json: str) -> Any:
    """A validator per schema text, compiled once per process.

    Compiling costs milliseconds; a runner that sets up a DoFn for every bundle
    (Beam's direct runners) would otherwise compile for every bundle. Compiled
    validators are pure functions, safe to share.
    """
    return fastjsonschema.compile(json.loads(schema_json), handlers=_NoRemoteRefs())


def _refuse_remote(uri: str) -> Any:
    raise fastjsonschema.JsonSchemaDefinitionException(
        f"$ref to another document is not followed: {uri[:200]}"
    )


class _NoRemoteRefs(dict):
    """fastjsonschema's ref handlers, one for every scheme: each refuses.

    A schema comes from a registry, and fastjsonschema fetches any ``$ref`` to
    another document with urllib (``http://``, ``file://``, ...): a schema could
    make the pipeline read local files or call into its network. References
    within the schema (``#/definitions/...``) are resolved as before.
    """

    def __contains__(self, scheme: object) -> bool:
        return True

    def __getitem__(self, scheme: str) -> Any:
        return _refuse_remote


class JsonCodec:
    """UTF-8 JSON payloads validated against a JSON Schema (compiled by fastjsonschema).

    Args:
        schema: the JSON Schema document.
        also: further schemas the value must satisfy (e.g. the reader's version when
            the writer's id names an older one).

    Example:
        >>> codec = JsonCodec({"type": "object", "required": ["a"],
        ...                    "properties": {"a": {"type": "integer"}}})
        >>> codec.decode(b'{"a": 1}')
        {'a': 1}
        >>> codec.decode(b'{"a": "x"}')
        Traceback (most recent call last):
        ...
        schemas.codecs.DecodeError: data.a must be integer (at a)
    """

    def __init__(self, schema: Any, *, also: tuple[Any, ...] = ()) -> None:
        self._validators = [_compiled(json.dumps(s, sort_keys=True)) for s in (schema, *also)]

    def decode(self, payload: bytes | memoryview) -> Any:
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as err:
            raise DecodeError("NotUtf8", f"value is not UTF-8: {err}") from None
        try:
            value = _STRICT_JSON.decode(text)
        except _Unrepresentable as err:
            raise DecodeError("Unrepresentable", str(err)) from None
        except (ValueError, RecursionError) as err:
            raise DecodeError("InvalidJson", f"value is not JSON: {err}") from None
        if _SURROGATE_ESCAPE.search(text):
            try:
                where = _lone_surrogate_at(value)
            except RecursionError:
                raise DecodeError("SchemaViolation", "the value is nested too deeply") from None
            if where is not None:
                raise DecodeError(
                    "Unrepresentable",
                    f"a string holds a lone surrogate escape, which UTF-8 cannot encode "
                    f"(at {_printable(where) or 'the top level'})",
                )
        self.validate(value)
        return value

    def validate(self, value: Any) -> None:
        """Raises :class:`DecodeError` (``SchemaViolation``, with the path) if ``value`` fails."""
        for validate in self._validators:
            try:
                validate(value)
            except fastjsonschema.JsonSchemaValueException as err:
                path = ".".join(str(p) for p in err.path[1:]) if err.path else ""
                raise DecodeError(
                    "SchemaViolation", f"{err.message} (at {path or 'the top level'})"
                ) from None
            except RecursionError:
                raise DecodeError("SchemaViolation", "the value is nested too deeply") from None

    def encode(self, value: Any) -> bytes:
        for validate in self._validators:
            validate(value)
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def codec_for(writer: RegisteredSchema, reader: RegisteredSchema | None = None) -> Codec:
    """The codec that reads ``writer``'s payloads as ``reader``'s values.

    Raises:
        ValueError: when the schemas are of different formats or cannot be parsed.
    """
    if reader is not None and reader.format != writer.format:
        raise ValueError(
            f"writer {writer.subject}/{writer.version} is {writer.format}, "
            f"reader {reader.subject}/{reader.version} is {reader.format}"
        )
    if writer.format == "avro":
        return AvroCodec(writer.schema, reader.schema if reader is not None else None)
    also = (reader.schema,) if reader is not None and reader != writer else ()
    return JsonCodec(writer.schema, also=also)


def encode_framed(schema: RegisteredSchema, value: Any) -> bytes:
    """``value`` encoded with ``schema`` in the Confluent wire format.

    >>> from schemas.registry import LocalFileRegistry
    >>> tweet = LocalFileRegistry().latest("tweet")
    >>> framed = encode_framed(tweet, {"id": "1", "text": "hi", "user": {"id": "u", "handle": "h"},
    ...                                "created_at": "2026-01-01T00:00:00Z"})
    >>> framed[0], int.from_bytes(framed[1:5], "big") == tweet.schema_id
    (0, True)
    """
    return frame(schema.schema_id, codec_for(schema).encode(value))
