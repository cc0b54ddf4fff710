"""A schema registry over files kept in git: ``<root>/<subject>/<version>.(json|avsc)``.

Schema ids are derived from (subject, version) alone, so they are the same on
every machine and do not shift when another subject is added.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from transforms.errors import ConfigError, DataplaneError

__all__ = ["PACKAGED_SCHEMAS", "LocalFileRegistry", "RegisteredSchema", "SchemaNotFoundError"]

PACKAGED_SCHEMAS = Path(__file__).resolve().parent
_FORMATS: dict[str, Literal["json", "avro"]] = {".json": "json", ".avsc": "avro"}


class SchemaNotFoundError(DataplaneError, LookupError):
    """No schema is registered under the requested subject, version or id."""


@dataclass(frozen=True)
class RegisteredSchema:
    """One version of a subject's schema."""

    subject: str
    version: int
    schema_id: int
    format: Literal["json", "avro"]
    schema: dict[str, Any]


def schema_id_for(subject: str, version: int) -> int:
    """The deterministic id of ``subject`` version ``version`` (a positive 31-bit int).

    >>> schema_id_for("tweet", 1) == schema_id_for("tweet", 1)
    True
    """
    return zlib.crc32(f"{subject}/{version}".encode()) & 0x7FFFFFFF or 1


class LocalFileRegistry:
    """Reads versioned schemas from a directory tree.

    Args:
        root: the directory holding ``<subject>/<version>.json|.avsc`` files; the
            schemas shipped with this package by default.

    Raises:
        ConfigError: when ``root`` is not a directory or holds a malformed schema file.

    Example:
        >>> registry = LocalFileRegistry()
        >>> schema = registry.latest("tweet")
        >>> (schema.subject, schema.format, schema.schema["type"])
        ('tweet', 'json', 'object')
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else PACKAGED_SCHEMAS
        if not self.root.is_dir():
            raise ConfigError("registry root", f"{str(self.root)!r} is not a directory")
        self._by_subject: dict[str, dict[int, RegisteredSchema]] = {}
        self._by_id: dict[int, RegisteredSchema] = {}
        for path in sorted(self.root.glob("*/*")):
            if path.suffix in _FORMATS and path.stem.isdigit():
                self._add(self._load(path))

    def _load(self, path: Path) -> RegisteredSchema:
        subject, version = path.parent.name, int(path.stem)
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError("registry root", f"cannot read schema {path}: {err}") from err
        return RegisteredSchema(
            subject, version, schema_id_for(subject, version), _FORMATS[path.suffix], schema
        )

    def _add(self, entry: RegisteredSchema) -> None:
        clash = self._by_id.get(entry.schema_id)
        if clash is not None:
            raise ConfigError(
                "registry root",
                f"schema ids of {clash.subject}/{clash.version} and "
                f"{entry.subject}/{entry.version} collide; rename one subject",
            )
        self._by_id[entry.schema_id] = entry
        self._by_subject.setdefault(entry.subject, {})[entry.version] = entry

    def subjects(self) -> list[str]:
        """All subject names, sorted."""
        return sorted(self._by_subject)

    def versions(self, subject: str) -> list[int]:
        """The versions of ``subject``, ascending."""
        return sorted(self._versions_of(subject))

    def get(self, subject: str, version: int | Literal["latest"] = "latest") -> RegisteredSchema:
        """One version of ``subject`` (the highest for ``"latest"``)."""
        versions = self._versions_of(subject)
        chosen = max(versions) if version == "latest" else version
        if chosen not in versions:
            raise SchemaNotFoundError(
                f"subject {subject!r} has no version {version}; it has {sorted(versions)}"
            )
        return versions[chosen]

    def latest(self, subject: str) -> RegisteredSchema:
        """The highest version of ``subject``."""
        return self.get(subject, "latest")

    def by_id(self, schema_id: int) -> RegisteredSchema:
        """The schema registered under ``schema_id``."""
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise SchemaNotFoundError(f"no schema has id {schema_id}") from None

    def _versions_of(self, subject: str) -> dict[int, RegisteredSchema]:
        try:
            return self._by_subject[subject]
        except KeyError:
            raise SchemaNotFoundError(
                f"unknown subject {subject!r} in {self.root}; known: {self.subjects()}"
            ) from None
