"""One entry point for sources: a source from a URI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import apache_beam as beam

from schemas.errors import ConfigError
from transforms.checkpoint.log import ResumeFrom

__all__ = ["is_unbounded", "read_from_uri"]

_KAFKA_PARAMS = {"group", "start", "start_timestamp_ms", "partitions"}
_KINESIS_PARAMS = {"region", "endpoint", "start", "start_timestamp_ms"}
_PUBSUB_PARAMS = {"timestamp_attribute", "id_label"}
_FILE_PARAMS = {"format"}
_DLQ_PARAMS = {"error_type", "stage", "include_replayed"}
_EXPECTED = (
    "kafka://HOST:PORT/TOPIC, kinesis://STREAM, pubsub://projects/P/subscriptions/S "
    "(or /topics/T), or file:///PATH/PATTERN"
)


def read_from_uri(
    uri: str,
    *,
    bounded: bool = False,
    max_records: int = 0,
    consumer_config: Mapping[str, Any] | None = None,
    resume_from: ResumeFrom | None = None,
    partition_discovery_s: float = 30.0,
    storage_options: Mapping[str, str] | None = None,
) -> beam.PTransform:
    """A source transform for ``uri``; every source emits the same Record envelope.

    ``resume_from`` (Kafka and Kinesis) starts each partition or shard right after
    the frontier the pipeline's Delta tables recorded; other sources ignore it.
    ``partition_discovery_s``: how often a streaming Kafka read looks for new
    partitions (0: never). ``storage_options`` (delta-rs) open a ``dlq:`` table on object
    storage.

    Supported:

    * ``kafka://HOST:PORT[,HOST:PORT...]/TOPIC[?group=G&start=earliest|latest|
      committed|timestamp&start_timestamp_ms=MS&partitions=0,1]``
    * ``kinesis://STREAM[?region=R&endpoint=URL&start=trim_horizon|latest|
      at_timestamp&start_timestamp_ms=MS]``
    * ``pubsub://projects/P/subscriptions/S`` or ``pubsub://projects/P/topics/T``
      (streaming only) ``[?timestamp_attribute=A&id_label=L]``
    * ``file:///PATH/PATTERN[?format=jsonl|parquet]`` (JSONL/Parquet replay)
    * ``dlq:TABLE[?error_type=A,B&stage=S]``: a dead-letter Delta table (a path or
      ``s3://`` URI) read back for replay, e.g. ``dlq:/tmp/lake/dead_letters``

    Raises:
        ConfigError: for an unknown scheme, a missing name or an unknown parameter.

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
            resume_from,
            partition_discovery_s,
        )
    query = parse_qs(parts.query)
    if parts.scheme == "kinesis":
        return _kinesis(parts.netloc + parts.path, query, bounded, max_records, resume_from)
    if parts.scheme == "pubsub":
        return _pubsub((parts.netloc + parts.path).strip("/"), query, bounded, max_records)
    if parts.scheme == "file":
        return _files(parts.netloc + parts.path, query, max_records)
    if parts.scheme == "dlq":
        table = uri.split(":", 1)[1].split("?", 1)[0]
        return _dead_letters(table, query, storage_options)
    raise ConfigError("--source", f"expected {_EXPECTED}; got {uri!r}")


def is_unbounded(uri: str, *, bounded: bool = False, max_records: int = 0) -> bool:
    """Whether ``read_from_uri(uri, ...)`` reads without end (a streaming run).

    Kafka, Kinesis and Pub/Sub are unbounded unless ``bounded`` or ``max_records``
    say otherwise; files and dead-letter tables always end.

    >>> is_unbounded("kafka://127.0.0.1:9092/tweets"), is_unbounded("file:///data/*.jsonl")
    (True, False)
    >>> is_unbounded("kinesis://s", max_records=10)
    False
    """
    streams = urlsplit(uri).scheme in ("kafka", "kinesis", "pubsub")
    return streams and not bounded and max_records <= 0


def _check_params(scheme: str, query: dict[str, list[str]], known: set[str]) -> None:
    unknown = sorted(set(query) - known)
    if unknown:
        raise ConfigError(
            "--source", f"unknown {scheme}:// parameters {unknown}; known: {sorted(known)}"
        )


def _last(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _kinesis(
    stream: str,
    query: dict[str, list[str]],
    bounded: bool,
    max_records: int,
    resume_from: ResumeFrom | None,
) -> beam.PTransform:
    from transforms.sources.kinesis import ReadFromKinesis

    _check_params("kinesis", query, _KINESIS_PARAMS)
    stream = stream.strip("/")
    if not stream or "/" in stream:
        raise ConfigError("--source", "expected kinesis://STREAM")
    timestamp = _last(query, "start_timestamp_ms")
    try:
        return ReadFromKinesis(
            stream,
            iterator_type=(_last(query, "start") or "trim_horizon").upper(),
            start_timestamp_ms=int(timestamp) if timestamp else None,
            bounded=bounded,
            max_records=max_records,
            region_name=_last(query, "region"),
            endpoint_url=_last(query, "endpoint"),
            resume_from=resume_from,
        )
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError("--source", f"bad number in kinesis:// parameters: {err}") from None


def _pubsub(
    path: str, query: dict[str, list[str]], bounded: bool, max_records: int
) -> beam.PTransform:
    from transforms.sources.pubsub import ReadFromPubSub

    _check_params("pubsub", query, _PUBSUB_PARAMS)
    is_subscription = "/subscriptions/" in path
    return ReadFromPubSub(
        subscription=path if is_subscription else None,
        topic=None if is_subscription else path,
        bounded=bounded,
        max_records=max_records,
        timestamp_attribute=_last(query, "timestamp_attribute"),
        id_label=_last(query, "id_label"),
    )


def _dead_letters(
    table: str, query: dict[str, list[str]], storage_options: Mapping[str, str] | None
) -> beam.PTransform:
    from transforms.sources.deadletters import ReadDeadLetters

    _check_params("dlq", query, _DLQ_PARAMS)
    if not table:
        raise ConfigError("--source", "expected dlq:TABLE (a path or s3:// URI)")

    def listed(name: str) -> list[str]:
        return [v for value in query.get(name, []) for v in value.split(",") if v]

    return ReadDeadLetters(
        table,
        error_types=listed("error_type"),
        stages=listed("stage"),
        include_replayed=(_last(query, "include_replayed") or "").lower() == "true",
        storage_options=dict(storage_options) if storage_options else None,
    )


def _files(pattern: str, query: dict[str, list[str]], max_records: int) -> beam.PTransform:
    from transforms.sources.files import ReadFromFiles

    _check_params("file", query, _FILE_PARAMS)
    if not pattern:
        raise ConfigError("--source", "expected file:///PATH/PATTERN")
    return ReadFromFiles(pattern, format=_last(query, "format") or "auto", max_records=max_records)


def _kafka(
    servers: str,
    topic: str,
    query: dict[str, list[str]],
    bounded: bool,
    max_records: int,
    consumer_config: Mapping[str, Any] | None,
    resume_from: ResumeFrom | None,
    partition_discovery_s: float,
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
            resume_from=resume_from,
            partition_discovery_s=partition_discovery_s,
        )
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError("--source", f"bad number in kafka:// parameters: {err}") from None
