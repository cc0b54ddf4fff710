"""Choosing a registry from a flag value: a directory, or a Confluent-compatible URL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.base import SchemaRegistry
from schemas.confluent import ConfluentRegistry
from schemas.registry import LocalFileRegistry

__all__ = ["open_registry"]


def open_registry(
    spec: str | None = None, config: Mapping[str, Any] | None = None
) -> SchemaRegistry:
    """The registry named by ``spec``.

    Args:
        spec: ``http(s)://...`` for a Confluent-compatible registry; a directory path
            (optionally ``file://``) for a local file registry; empty or ``None`` for
            the schemas packaged with this library.
        config: ``SchemaRegistryClient`` settings for a URL (auth, TLS); must be empty
            for a local registry.

    Raises:
        ConfigError: when the directory does not exist, or ``config`` is given for a
            local registry.

    >>> open_registry().subjects()
    ['tweet', 'vehicle_telemetry']
    """
    if spec and spec.startswith(("http://", "https://")):
        return ConfluentRegistry(spec, config)
    if config:
        from schemas.errors import ConfigError

        raise ConfigError("registry_config", "only applies to an http(s):// --registry")
    path = spec.removeprefix("file://") if spec else None
    return LocalFileRegistry(path)
