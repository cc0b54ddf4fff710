"""A schema registry over files kept in git: ``<root>/<subject>/<version>.(json|avsc)``.

Schema ids are derived from (subject, version) alone, so they are the same on
every machine and do not shift when another subject is added. A subject's
compatibility level lives beside its versions in ``<subject>/config.json``
(``{"compatibility": "FULL"}``); without one it is BACKWARD, Confluent's default.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

from schemas.base import (
    COMPATIBILITY_LEVELS,
    DEFAULT_COMPATIBILITY,
    RegisteredSchema,
    SchemaFormat,
    SchemaNotFoundError,
    SchemaRegistry,
    Version,
)
from schemas.errors import ConfigError

__all__ = ["PACKAGED_SCHEMAS", "LocalFileRegistry", "schema_id_for"]

PACKAGED_SCHEMAS = Path(__file__).resolve().parent
_FORMATS: dict[str, SchemaFormat] = {".json": "json", ".avsc": "avro"}
_SUFFIXES: dict[SchemaFormat, str] = {fmt: suffix for suffix, fmt in _FORMATS.items()}
_CONFIG_FILE = "config.json"


def schema_id_for(subject: str, version: int) -> int:
    """The deterministic id of ``subject`` version ``version`` (a positive 31-bit int).

    It is the CRC-32 of ``"<subject>/<version>"`` without its top bit (0 becomes 1),
    so it is the same in every process and on every machine:

    >>> schema_id_for("tweet", 1), schema_id_for("vehicle_telemetry", 2)
    (1585189352, 1073895766)
    """
    return zlib.crc32(f"{subject}/{version}".encode()) & 0x7FFFFFFF or 1


class LocalFileRegistry(SchemaRegistry):
    """Reads versioned schemas from a directory tree.

    Args:
        root: the directory holding ``<subject>/<version>.json|.avsc`` files; the
            schemas shipped with this package by default.

    Raises:
        ConfigError: when ``root`` is not a directory or holds a malformed schema or
            subject config file.

    Example:
        >>> registry = LocalFileRegistry()
        >>> schema = registry.latest("tweet")
        >>> (schema.subject, schema.format, schema.schema["type"])
        ('tweet', 'json', 'object')
        >>> registry.compatibility("vehicle_telemetry"), registry.compatibility("tweet")
        ('FULL_TRANSITIVE', 'BACKWARD')
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else PACKAGED_SCHEMAS
        if not self.root.is_dir():
            raise ConfigError("registry root", f"{str(self.root)!r} is not a directory")
        self._by_subject: dict[str, dict[int, RegisteredSchema]] = {}
        self._by_id: dict[int, RegisteredSchema] = {}
        self._levels: dict[str, str] = {}
        for path in sorted(self.root.glob("*/*")):
            if path.suffix in _FORMATS and path.stem.isdigit():
                self._add(self._load(path))
            elif path.name == _CONFIG_FILE:
                self._levels[path.parent.name] = _read_level(path)

    def __repr__(self) -> str:
        return f"LocalFileRegistry({str(self.root)!r})"

    def _load(self, path: Path) -> RegisteredSchema:
        subject, version = path.parent.name, int(path.stem)
        return RegisteredSchema(
            subject,
            version,
            schema_id_for(subject, version),
            _FORMATS[path.suffix],
            _read_json(path),
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
        return sorted(self._by_subject)

    def versions(self, subject: str) -> list[int]:
        return sorted(self._versions_of(subject))

    def get(self, subject: str, version: Version = "latest") -> RegisteredSchema:
        versions = self._versions_of(subject)
        chosen = max(versions) if version == "latest" else version
        if chosen not in versions:
            raise SchemaNotFoundError(
                f"subject {subject!r} has no version {version}; it has {sorted(versions)}"
            )
        return versions[chosen]

    def by_id(self, schema_id: int) -> RegisteredSchema:
        try:
            return self._by_id[schema_id]
        except KeyError:
            raise SchemaNotFoundError(f"no schema has id {schema_id}") from None

    def subject_versions(self, schema_id: int) -> list[tuple[str, int]]:
        entry = self.by_id(schema_id)
        return [(entry.subject, entry.version)]

    def compatibility(self, subject: str) -> str:
        return self._levels.get(subject, DEFAULT_COMPATIBILITY)

    def register(self, subject: str, schema: Any, fmt: SchemaFormat) -> RegisteredSchema:
        """Writes ``schema`` as the next version of ``subject`` (or returns the equal one).

        The caller checks compatibility first; this only stores. The new file is
        written beside the others, ready to be committed to git.
        """
        try:
            return self.lookup(subject, schema, fmt)
        except SchemaNotFoundError:
            pass
        known = self._by_subject.get(subject, {})
        version = max(known, default=0) + 1
        path = self.root / subject / f"{version}{_SUFFIXES[fmt]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        entry = RegisteredSchema(subject, version, schema_id_for(subject, version), fmt, schema)
        self._add(entry)
        return entry

    def _versions_of(self, subject: str) -> dict[int, RegisteredSchema]:
        try:
            return self._by_subject[subject]
        except KeyError:
            raise SchemaNotFoundError(
                f"unknown subject {subject!r} in {self.root}; known: {self.subjects()}"
            ) from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError("registry root", f"cannot read {path}: {err}") from err


def _read_level(path: Path) -> str:
    config = _read_json(path)
    level = config.get("compatibility") if isinstance(config, dict) else None
    if level not in COMPATIBILITY_LEVELS:
        raise ConfigError(
            "registry root",
            f'{path} must hold {{"compatibility": LEVEL}} with LEVEL one of '
            f"{', '.join(COMPATIBILITY_LEVELS)}; got {level!r}",
        )
    return str(level)
