"""Compatibility levels between versions of a subject, with Confluent's semantics.

* BACKWARD: the new schema reads data written with the previous one (upgrade
  consumers first). FORWARD: the previous schema reads the new one's data
  (upgrade producers first). FULL: both.
* ``*_TRANSITIVE``: against every earlier version, not only the latest.
* NONE: anything goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from schemas.base import COMPATIBILITY_LEVELS, RegisteredSchema, SchemaFormat, SchemaRegistry
from schemas.compat_avro import avro_problems
from schemas.compat_json import json_problems

__all__ = ["check_candidate", "check_subject", "reader_problems"]


def reader_problems(fmt: SchemaFormat, reader: Any, writer: Any) -> list[str]:
    """Why data written with ``writer`` may not be readable with ``reader``.

    >>> reader_problems("json", {"type": "number"}, {"type": "integer"})
    []
    """
    return avro_problems(reader, writer) if fmt == "avro" else json_problems(reader, writer)


def check_candidate(
    candidate: Any, fmt: SchemaFormat, history: Sequence[RegisteredSchema], level: str
) -> list[str]:
    """Why ``candidate`` may not follow ``history`` (oldest first) under ``level``.

    Returns:
        One message per problem, naming the direction and the version it breaks;
        empty when the candidate is compatible.

    Raises:
        ValueError: when ``level`` is not a compatibility level.

    Example:
        >>> from schemas.registry import LocalFileRegistry
        >>> registry = LocalFileRegistry()
        >>> v1 = registry.get("vehicle_telemetry", 1)
        >>> v2 = registry.get("vehicle_telemetry", 2)
        >>> check_candidate(v2.schema, "avro", [v1], "FULL")
        []
        >>> dropped = dict(v1.schema, fields=v1.schema["fields"][:-1])
        >>> check_candidate(dropped, "avro", [v1, v2], "FORWARD")  # doctest: +NORMALIZE_WHITESPACE
        ["FORWARD: version 2 cannot read it: at VehicleTelemetry.lon: reader field 'lon' has
        no default and the writer does not have it"]
    """
    level = level.upper()
    if level not in COMPATIBILITY_LEVELS:
        raise ValueError(
            f"compatibility level {level!r} is unknown; expected one of "
            f"{', '.join(COMPATIBILITY_LEVELS)}"
        )
    if level == "NONE" or not history:
        return []
    targets = list(history) if level.endswith("_TRANSITIVE") else [history[-1]]
    found: list[str] = []
    for previous in reversed(targets):
        if previous.format != fmt:
            found.append(f"version {previous.version} is {previous.format}, the candidate {fmt}")
            continue
        if level.startswith(("BACKWARD", "FULL")):
            found += [
                f"BACKWARD: it cannot read version {previous.version}: {p}"
                for p in reader_problems(fmt, candidate, previous.schema)
            ]
        if level.startswith(("FORWARD", "FULL")):
            found += [
                f"FORWARD: version {previous.version} cannot read it: {p}"
                for p in reader_problems(fmt, previous.schema, candidate)
            ]
    return found


def check_subject(registry: SchemaRegistry, subject: str, level: str | None = None) -> list[str]:
    """Checks every version of ``subject`` against the ones before it.

    Args:
        registry: where the subject lives.
        subject: the subject to check.
        level: the policy to apply; the subject's own level when omitted.

    Returns:
        One message per problem, each prefixed ``subject vN:``; empty when the whole
        history honours the policy.

    >>> from schemas.registry import LocalFileRegistry
    >>> check_subject(LocalFileRegistry(), "vehicle_telemetry")
    []
    """
    level = level or registry.compatibility(subject)
    history = registry.history(subject)
    found: list[str] = []
    for index, entry in enumerate(history[1:], start=1):
        problems = check_candidate(entry.schema, entry.format, history[:index], level)
        found += [f"{subject} v{entry.version}: {p}" for p in problems]
    return found
