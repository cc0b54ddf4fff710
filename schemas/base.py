"""What every schema registry offers the library: subjects, versions, ids, policies."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.errors import DataplaneError

__all__ = [
    "COMPATIBILITY_LEVELS",
    "DEFAULT_COMPATIBILITY",
    "RegisteredSchema",
    "RegistryUnavailableError",
    "SchemaFormat",
    "SchemaNotFoundError",
    "SchemaRegistry",
    "Version",
    "canonical_text",
    "format_from_schema_type",
    "schema_type_of",
]

SchemaFormat = Literal["json", "avro"]
Version = int | Literal["latest"]

# Confluent's compatibility levels; BACKWARD is its default and ours.
COMPATIBILITY_LEVELS = (
    "NONE",
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
)
DEFAULT_COMPATIBILITY = "BACKWARD"

_SCHEMA_TYPES: dict[str, SchemaFormat] = {"AVRO": "avro", "JSON": "json"}


class SchemaNotFoundError(DataplaneError, LookupError):
    """No schema is registered under the requested subject, version or id."""


class RegistryUnavailableError(DataplaneError, ConnectionError):
    """The registry could not be reached or answered with a server error."""


@dataclass(frozen=True)
class RegisteredSchema:
    """One version of a subject's schema.

    Attributes:
        subject: the subject it is registered under.
        version: its version within the subject (1, 2, ...).
        schema_id: the registry-wide id that framed messages carry.
        format: ``"avro"`` or ``"json"`` (JSON Schema).
        schema: the parsed schema document.
    """

    subject: str
    version: int
    schema_id: int
    format: SchemaFormat
    schema: Any = field(compare=False)

    @property
    def schema_type(self) -> str:
        """Confluent's name for the format: ``"AVRO"`` or ``"JSON"``."""
        return schema_type_of(self.format)

    @property
    def text(self) -> str:
        """The schema as compact JSON text, as the registry REST API carries it."""
        return canonical_text(self.schema)


def schema_type_of(fmt: SchemaFormat) -> str:
    """Confluent's ``schemaType`` for one of our formats.

    >>> schema_type_of("avro"), schema_type_of("json")
    ('AVRO', 'JSON')
    """
    return fmt.upper()


def format_from_schema_type(schema_type: str | None) -> SchemaFormat:
    """Our format for a Confluent ``schemaType`` (absent means Avro, as in the REST API).

    Raises:
        ValueError: for types this library does not decode (e.g. ``PROTOBUF``).

    >>> format_from_schema_type(None), format_from_schema_type("JSON")
    ('avro', 'json')
    """
    key = (schema_type or "AVRO").upper()
    if key not in _SCHEMA_TYPES:
        raise ValueError(f"schema type {schema_type!r} is not supported; expected AVRO or JSON")
    return _SCHEMA_TYPES[key]


def canonical_text(schema: Any) -> str:
    """Compact JSON with sorted keys: equal schemas give equal text.

    >>> canonical_text({"type": "string", "a": 1})
    '{"a":1,"type":"string"}'
    """
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class SchemaRegistry(ABC):
    """A source of versioned schemas, addressed by subject/version or by id."""

    @abstractmethod
    def subjects(self) -> list[str]:
        """All subject names, sorted."""

    @abstractmethod
    def versions(self, subject: str) -> list[int]:
        """The versions of ``subject``, ascending.

        Raises:
            SchemaNotFoundError: when the subject is unknown.
        """

    @abstractmethod
    def get(self, subject: str, version: Version = "latest") -> RegisteredSchema:
        """One version of ``subject`` (the highest for ``"latest"``).

        Raises:
            SchemaNotFoundError: when the subject or version is unknown.
        """

    @abstractmethod
    def by_id(self, schema_id: int) -> RegisteredSchema:
        """The schema registered under ``schema_id`` (its first subject/version).

        Raises:
            SchemaNotFoundError: when no schema has that id.
        """

    @abstractmethod
    def subject_versions(self, schema_id: int) -> list[tuple[str, int]]:
        """Every (subject, version) registered with ``schema_id``."""

    @abstractmethod
    def compatibility(self, subject: str) -> str:
        """The subject's compatibility level, one of :data:`COMPATIBILITY_LEVELS`."""

    def latest(self, subject: str) -> RegisteredSchema:
        """The highest version of ``subject``."""
        return self.get(subject, "latest")

    def lookup(self, subject: str, schema: Any, fmt: SchemaFormat) -> RegisteredSchema:
        """The version of ``subject`` whose schema equals ``schema``.

        Raises:
            SchemaNotFoundError: when no version of the subject has that schema.
        """
        wanted = canonical_text(schema)
        for version in self.versions(subject):
            entry = self.get(subject, version)
            if entry.format == fmt and entry.text == wanted:
                return entry
        raise SchemaNotFoundError(f"subject {subject!r} has no version with that schema")

    def history(self, subject: str) -> list[RegisteredSchema]:
        """Every version of ``subject``, oldest first."""
        return [self.get(subject, v) for v in self.versions(subject)]
