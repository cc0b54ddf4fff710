"""One entry point for sources, and one reading of URIs for sources and destinations alike."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import apache_beam as beam

from schemas.errors import ConfigError
from transforms.checkpoint.log import ResumeFrom

__all__ = ["SCHEMES", "ParsedUri", "is_unbounded", "parse_uri", "read_from_uri"]

SCHEMES = ("kafka", "kinesis", "pubsub", "file", "dlq")
_STREAMS = ("kafka", "kinesis", "pubsub")
_KAFKA_PARAMS = {"group", "start", "start_timestamp_ms", "partitions"}
_KINESIS_PARAMS = {"region", "endpoint", "start", "start_timestamp_ms"}
_PUBSUB_PARAMS = {"timestamp_attribute", "id_label"}
_FILE_PARAMS = {"format"}
_DLQ_PARAMS = {"error_type", "stage", "include_replayed"}
_EXPECTED = (
    "kafka://HOST:PORT/TOPIC, kinesis://STREAM, pubsub://projects/P/subscriptions/S "
    "(or /topics/T), file:///PATH/PATTERN or dlq:TABLE"
)
_FORMS = {
    "kafka": "kafka://HOST:PORT/TOPIC",
    "kinesis": "kinesis://STREAM",
    "file": "file:///PATH/PATTERN",
    "dlq": "dlq:TABLE (a path or s3:// URI)",
}


@dataclass(frozen=True)
class ParsedUri:
    """A source or destination URI, split the same way for reading and for writing.

    Attributes:
        scheme: one of :data:`SCHEMES`.
        name: the Kafka topic, Kinesis stream, Pub/Sub path (``projects/...``), file
            path or pattern, or dead-letter table.
        servers: the Kafka bootstrap servers ``HOST:PORT[,HOST:PORT...]`` (Kafka only).
        params: the query parameters, each with every value given.
        option: the flag the URI came from, named in errors (``--source``, ``--to``).
    """

    scheme: str
    name: str
    servers: str = ""
    params: Mapping[str, list[str]] = field(default_factory=dict)
    option: str = "--source"

    def param(self, key: str) -> str | None:
        """The last value given for ``key``, or None."""
        values = self.params.get(key)
        return values[-1] if values else None

    def listed(self, key: str) -> list[str]:
        """Every value of ``key``, comma-separated lists split: ``?a=x,y&a=z`` gives x, y, z."""
        return [v for value in self.params.get(key, []) for v in value.split(",") if v]

    def check_params(self, known: Collection[str]) -> None:
        """Raises ConfigError naming the parameters not in ``known``."""
        unknown = sorted(set(self.params) - set(known))
        if unknown:
            raise ConfigError(
                self.option,
                f"unknown {self.scheme}:// parameters {unknown}; known: {sorted(known)}",
            )


def parse_uri(uri: str, *, option: str = "--source") -> ParsedUri:
    """Splits ``uri`` into scheme, name and parameters; ``option`` is named in errors.

    Raises:
        ConfigError: for an unknown scheme or a URI without the name its scheme needs.

    Example:
        >>> parsed = parse_uri("kafka://127.0.0.1:9092/tweets?group=g1")
        >>> parsed.servers, parsed.name, parsed.param("group")
        ('127.0.0.1:9092', 'tweets', 'g1')
        >>> parse_uri("kinesis://events?region=eu-west-1").name
        'events'
        >>> parse_uri("dlq:/tmp/lake/dead_letters?stage=decode").name
        '/tmp/lake/dead_letters'
    """
    parts = urlsplit(uri)
    params = parse_qs(parts.query)
    if parts.scheme not in SCHEMES:
        raise ConfigError(option, f"expected {_EXPECTED}; got {uri!r}")
    if parts.scheme == "kafka":
        name, servers = parts.path.strip("/"), parts.netloc
    elif parts.scheme == "dlq":
        name, servers = uri.split(":", 1)[1].split("?", 1)[0], ""
    elif parts.scheme == "file":
        name, servers = parts.netloc + parts.path, ""
    else:
        name, servers = (parts.netloc + parts.path).strip("/"), ""
    parsed = ParsedUri(parts.scheme, name, servers, params, option)
    if not _well_formed(parsed):
        raise ConfigError(option, f"expected {_FORMS[parsed.scheme]}")
    return parsed


def _well_formed(parsed: ParsedUri) -> bool:
    if parsed.scheme == "pubsub":
        return True  # the reader and the publisher each check the path they need
    if parsed.scheme in ("kafka", "kinesis") and "/" in parsed.name:
        return False
    return bool(parsed.name) and (parsed.scheme != "kafka" or bool(parsed.servers))


def read_from_uri(
    uri: str,
    *,
    bounded: bool = False,
    max_records: int = 0,
    consumer_config: Mapping[str, Any] | None = None,
    resume_from: ResumeFrom | None = None,
    partition_discovery_s: float = 30.0,
    storage_options: Mapping[str, str] | None = None,
    batched: bool = False,
) -> beam.PTransform:
    """A source transform for ``uri``; every source emits the same Record envelope.

    ``batched`` makes the source emit :class:`~transforms.batches.Batch` elements
    of Records (Kafka: the records of each fetch from a partition; the others:
    each bundle's records, packed by :class:`~transforms.batches.PackBatches`):
    the row-wise transforms and sinks of this library take batches as well as rows,
    at a fraction of the per-element cost.

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
    parsed = parse_uri(uri)
    if parsed.scheme == "kafka":
        return _kafka(
            parsed,
            bounded,
            max_records,
            consumer_config,
            resume_from,
            partition_discovery_s,
            batched,
        )
    if parsed.scheme == "kinesis":
        read = _kinesis(parsed, bounded, max_records, resume_from)
    elif parsed.scheme == "pubsub":
        read = _pubsub(parsed, bounded, max_records)
    elif parsed.scheme == "file":
        read = _files(parsed, max_records)
    else:
        read = _dead_letters(parsed, storage_options)
    return _Packed(read) if batched else read


class _Packed(beam.PTransform):
    """A source whose records go on packed into batches."""

    def __init__(self, read: beam.PTransform) -> None:
        super().__init__(label=read.label)
        self._read = read

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        from transforms.batches import PackBatches

        return pbegin | "Read" >> self._read | "Batches" >> PackBatches()

    def display_data(self) -> dict[str, Any]:
        return {**self._read.display_data(), "batched": True}


def is_unbounded(uri: str, *, bounded: bool = False, max_records: int = 0) -> bool:
    """Whether ``read_from_uri(uri, ...)`` reads without end (a streaming run).

    Kafka, Kinesis and Pub/Sub are unbounded unless ``bounded`` or ``max_records``
    say otherwise; files and dead-letter tables always end.

    >>> is_unbounded("kafka://127.0.0.1:9092/tweets"), is_unbounded("file:///data/*.jsonl")
    (True, False)
    >>> is_unbounded("kinesis://s", max_records=10)
    False
    """
    streams = urlsplit(uri).scheme in _STREAMS
    return streams and not bounded and max_records <= 0


def _kinesis(
    parsed: ParsedUri, bounded: bool, max_records: int, resume_from: ResumeFrom | None
) -> beam.PTransform:
    from transforms.sources.kinesis import ReadFromKinesis

    parsed.check_params(_KINESIS_PARAMS)
    timestamp = parsed.param("start_timestamp_ms")
    try:
        return ReadFromKinesis(
            parsed.name,
            iterator_type=(parsed.param("start") or "trim_horizon").upper(),
            start_timestamp_ms=int(timestamp) if timestamp else None,
            bounded=bounded,
            max_records=max_records,
            region_name=parsed.param("region"),
            endpoint_url=parsed.param("endpoint"),
            resume_from=resume_from,
        )
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError("--source", f"bad number in kinesis:// parameters: {err}") from None


def _pubsub(parsed: ParsedUri, bounded: bool, max_records: int) -> beam.PTransform:
    from transforms.sources.pubsub import ReadFromPubSub

    parsed.check_params(_PUBSUB_PARAMS)
    is_subscription = "/subscriptions/" in parsed.name
    return ReadFromPubSub(
        subscription=parsed.name if is_subscription else None,
        topic=None if is_subscription else parsed.name,
        bounded=bounded,
        max_records=max_records,
        timestamp_attribute=parsed.param("timestamp_attribute"),
        id_label=parsed.param("id_label"),
    )


def _dead_letters(parsed: ParsedUri, storage_options: Mapping[str, str] | None) -> beam.PTransform:
    from transforms.sources.deadletters import ReadDeadLetters

    parsed.check_params(_DLQ_PARAMS)
    return ReadDeadLetters(
        parsed.name,
        error_types=parsed.listed("error_type"),
        stages=parsed.listed("stage"),
        include_replayed=(parsed.param("include_replayed") or "").lower() == "true",
        storage_options=dict(storage_options) if storage_options else None,
    )


def _files(parsed: ParsedUri, max_records: int) -> beam.PTransform:
    from transforms.sources.files import ReadFromFiles

    parsed.check_params(_FILE_PARAMS)
    return ReadFromFiles(
        parsed.name, format=parsed.param("format") or "auto", max_records=max_records
    )


def _kafka(
    parsed: ParsedUri,
    bounded: bool,
    max_records: int,
    consumer_config: Mapping[str, Any] | None,
    resume_from: ResumeFrom | None,
    partition_discovery_s: float,
    batched: bool,
) -> beam.PTransform:
    from transforms.sources.kafka import ReadFromKafka

    parsed.check_params(_KAFKA_PARAMS)
    config = dict(consumer_config or {})
    group = parsed.param("group")
    if group is not None:
        config["group.id"] = group
    timestamp = parsed.param("start_timestamp_ms")
    partitions = parsed.param("partitions")
    try:
        return ReadFromKafka(
            bootstrap_servers=parsed.servers,
            topic=parsed.name,
            start=parsed.param("start") or "earliest",  # type: ignore[arg-type]
            start_timestamp_ms=int(timestamp) if timestamp else None,
            partitions=[int(p) for p in partitions.split(",")] if partitions else None,
            bounded=bounded,
            max_records=max_records,
            consumer_config=config,
            resume_from=resume_from,
            partition_discovery_s=partition_discovery_s,
            batched=batched,
        )
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError("--source", f"bad number in kafka:// parameters: {err}") from None
