"""The Confluent Schema Registry REST API, through confluent-kafka's ``SchemaRegistryClient``.

The client caches schemas by id and by subject/version, so each id costs one
round trip per worker. The client is built lazily and is not pickled: only its
configuration travels with a pipeline, and secrets in it never appear in
``repr``, display data or error messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from schemas.base import (
    RegisteredSchema,
    RegistryUnavailableError,
    SchemaNotFoundError,
    SchemaRegistry,
    Version,
    format_from_schema_type,
)
from schemas.errors import ConfigError
from schemas.secrets import redact, redact_text, redact_url

__all__ = ["ConfluentRegistry"]

_T = TypeVar("_T")
# Schema Registry error codes that mean "no such thing" rather than "the server failed".
_NOT_FOUND_CODES = {40401, 40402, 40403, 40406}


class ConfluentRegistry(SchemaRegistry):
    """A Confluent-compatible schema registry reached over HTTP(S).

    Args:
        url: the registry's base URL (comma-separate several for failover).
        config: further ``SchemaRegistryClient`` settings, passed through as they are:
            ``basic.auth.user.info``, ``bearer.auth.*``, ``ssl.*``, ``max.retries``,
            ``timeout`` and so on.

    Raises:
        ConfigError: when ``url`` is not an http(s) URL.

    Example:
        >>> registry = ConfluentRegistry("http://127.0.0.1:8081",
        ...                              {"basic.auth.user.info": "bob:hunter2"})
        >>> registry
        ConfluentRegistry('http://127.0.0.1:8081', {'basic.auth.user.info': '***'})
    """

    def __init__(self, url: str, config: Mapping[str, Any] | None = None) -> None:
        if not all(u.strip().startswith(("http://", "https://")) for u in url.split(",")):
            raise ConfigError("registry", f"expected http(s)://host:port, got {redact_url(url)!r}")
        self._config = {**(config or {}), "url": url}
        self._client: Any = None

    def __repr__(self) -> str:
        shown = redact({k: v for k, v in self._config.items() if k != "url"})
        return f"ConfluentRegistry({redact_url(self._config['url'])!r}, {shown})"

    def __getstate__(self) -> dict[str, Any]:
        return {"_config": self._config, "_client": None}

    @property
    def url(self) -> str:
        """The base URL, with any password in it redacted."""
        return redact_url(self._config["url"])

    def subjects(self) -> list[str]:
        return sorted(self._call(lambda c: c.get_subjects(), "listing subjects"))

    def versions(self, subject: str) -> list[int]:
        return sorted(self._call(lambda c: c.get_versions(subject), f"subject {subject!r}"))

    def get(self, subject: str, version: Version = "latest") -> RegisteredSchema:
        found = self._call(
            lambda c: c.get_version(subject, version), f"subject {subject!r} version {version}"
        )
        return _registered(found.subject or subject, found.version, found.schema_id, found.schema)

    def by_id(self, schema_id: int) -> RegisteredSchema:
        schema = self._call(lambda c: c.get_schema(schema_id), f"schema id {schema_id}")
        pairs = self.subject_versions(schema_id)
        subject, version = pairs[0] if pairs else ("", 0)
        return _registered(subject, version, schema_id, schema)

    def subject_versions(self, schema_id: int) -> list[tuple[str, int]]:
        pairs = self._call(lambda c: c.get_schema_versions(schema_id), f"schema id {schema_id}")
        return [(p.subject, p.version) for p in pairs]

    def compatibility(self, subject: str) -> str:
        def level(client: Any) -> str:
            try:
                return str(client.get_compatibility(subject))
            except _registry_error() as err:
                if err.error_code not in _NOT_FOUND_CODES:
                    raise
                return str(client.get_compatibility())  # no subject override: the global level

        return self._call(level, f"compatibility of {subject!r}")

    def _call(self, request: Callable[[Any], _T], what: str) -> _T:
        try:
            return request(self._connect())
        except _registry_error() as err:
            message = redact_text(f"{what}: {err.error_message}", self._config)
            if err.error_code in _NOT_FOUND_CODES or err.http_status_code == 404:
                raise SchemaNotFoundError(message) from None
            raise RegistryUnavailableError(f"{self.url} failed on {message}") from None
        except Exception as err:  # transport errors: httpx, ssl, timeouts
            message = redact_text(f"{type(err).__name__}: {err}", self._config)
            raise RegistryUnavailableError(
                f"{self.url} unreachable for {what}: {message}"
            ) from None

    def _connect(self) -> Any:
        if self._client is None:
            from confluent_kafka.schema_registry import SchemaRegistryClient

            try:
                self._client = SchemaRegistryClient(dict(self._config))
            except (ValueError, TypeError) as err:
                raise ConfigError("registry_config", redact_text(str(err), self._config)) from None
        return self._client


def _registry_error() -> type[Any]:
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    return SchemaRegistryError


def _registered(subject: str, version: int, schema_id: int, schema: Any) -> RegisteredSchema:
    try:
        fmt = format_from_schema_type(schema.schema_type)
    except ValueError as err:
        raise SchemaNotFoundError(f"schema id {schema_id}: {err}") from None
    return RegisteredSchema(subject, version, schema_id, fmt, json.loads(schema.schema_str))
