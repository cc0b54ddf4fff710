"""One entry point for sources: a source from a URI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import apache_beam as beam

from transforms.errors import ConfigError

__all__ = ["read_from_uri"]

_KAFKA_PARAMS = {"group", "start", "start_timestamp_ms", "partitions"}


def read_from_uri(
    uri: str,
    *,
    bounded: bool = False,
    max_records: int = 0,
    consumer_config: Mapping[str, Any] | None = None,
) -> beam.PTransform:
    """A source transform for ``uri``.

    Supported: ``kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?group=G&start=earliest|latest|
    committed|timestamp&start_timestamp_ms=MS&partitions=0,1]``.

    Raises:
        ConfigError: for an unknown scheme, a missing topic or an unknown parameter.

    Example:
        >>> read = read_from_uri("kafka://127.0.0.1:9092/tweets?group=g1", bounded=True)
        >>> read.display_data()["topic"]
        'tweets'
    """
    parts = urlsplit(uri)
    if parts.scheme == "kafka":
        return _kafka(
            parts.netloc,
            parts.path.strip("/"),
            parse_qs(parts.query),
            bounded,
            max_records,
            consumer_config,
        )
    raise ConfigError("--source", f"expected a kafka://HOST:PORT/TOPIC URI, got {uri!r}")


def _kafka(
    servers: str,
    topic: str,
    query: dict[str, list[str]],
    bounded: bool,
    max_records: int,
    consumer_config: Mapping[str, Any] | None,
) -> beam.PTransform:
    from transforms.sources.kafka import ReadFromKafka

    unknown = sorted(set(query) - _KAFKA_PARAMS)
    if unknown:
        raise ConfigError(
            "--source", f"unknown kafka:// parameters {unknown}; known: {sorted(_KAFKA_PARAMS)}"
        )
    if not servers or not topic or "/" in topic:
        raise ConfigError("--source", "expected kafka://HOST:PORT/TOPIC")
    config = dict(consumer_config or {})
    if "group" in query:
        config["group.id"] = query["group"][-1]
    timestamp = query.get("start_timestamp_ms")
    partitions = query.get("partitions")
    try:
        return ReadFromKafka(
            bootstrap_servers=servers,
            topic=topic,
            start=query.get("start", ["earliest"])[-1],  # type: ignore[arg-type]
            start_timestamp_ms=int(timestamp[-1]) if timestamp else None,
            partitions=[int(p) for p in partitions[-1].split(",")] if partitions else None,
            bounded=bounded,
            max_records=max_records,
            consumer_config=config,
        )
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError("--source", f"bad number in kafka:// parameters: {err}") from None
