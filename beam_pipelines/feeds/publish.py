"""Writing generated messages to a destination named by URI: Kafka, Kinesis, Pub/Sub, a file.

    kafka://HOST:PORT/TOPIC            keyed produce (partition by key hash)
    kinesis://STREAM[?region=R&endpoint=URL]   PutRecords, partition key = message key
    pubsub://projects/P/topics/T       publish; attributes key and ts (event time, ms)
    file:///PATH.jsonl                 one value per line (for replay with file://)
    file:///PATH.parquet               key, value, event_time_ms columns (binary values)

Kafka topics, Kinesis streams (``partitions`` partitions or shards) and Pub/Sub topics are
created when missing. The URI means what it means to :func:`transforms.sources.read_from_uri`.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from beam_pipelines.feeds.kafka import produce
from beam_pipelines.feeds.kinesis import ensure_stream, put_records
from beam_pipelines.feeds.tweets import GeneratedMessage
from schemas.errors import ConfigError
from transforms.sources.uri import ParsedUri, parse_uri

__all__ = ["publish"]


def publish(uri: str, messages: Iterable[GeneratedMessage], *, partitions: int = 3) -> Counter[str]:
    """Writes ``messages`` to ``uri``; returns how many of each kind were written.

    Raises:
        ConfigError: for an unknown scheme or a malformed URI.
        SourceUnavailableError: when the destination refuses messages.
    """
    parsed = parse_uri(uri, option="--to")
    if parsed.scheme == "kafka":
        return produce(parsed.servers, parsed.name, messages, partitions=partitions)
    if parsed.scheme == "kinesis":
        return _to_kinesis(parsed, messages, partitions)
    if parsed.scheme == "pubsub":
        return _to_pubsub(parsed.name, messages)
    if parsed.scheme == "file":
        return _to_file(Path(parsed.name), messages)
    raise ConfigError(
        "--to", f"expected kafka://, kinesis://, pubsub://projects/P/topics/T or file://; {uri!r}"
    )


def _to_kinesis(
    parsed: ParsedUri, messages: Iterable[GeneratedMessage], shards: int
) -> Counter[str]:
    from transforms.sources.kinesis import kinesis_client

    client = kinesis_client(parsed.param("region"), parsed.param("endpoint"))
    ensure_stream(client, parsed.name, shards)
    return put_records(client, parsed.name, messages)


def _to_pubsub(topic: str, messages: Iterable[GeneratedMessage]) -> Counter[str]:
    from google.api_core import exceptions
    from google.cloud import pubsub_v1  # type: ignore[attr-defined]

    if not topic.startswith("projects/") or "/topics/" not in topic:
        raise ConfigError("--to", f"expected pubsub://projects/P/topics/T, got {topic!r}")
    publisher = pubsub_v1.PublisherClient()
    with contextlib.suppress(exceptions.AlreadyExists):
        publisher.create_topic(name=topic)
    kinds: Counter[str] = Counter()
    futures = []
    for message in messages:
        attributes = {"ts": str(message.timestamp_ms)}
        if message.key:
            attributes["key"] = message.key.decode("utf-8", "replace")
        futures.append((message.kind, publisher.publish(topic, message.value or b"", **attributes)))
    for kind, future in futures:
        future.result(timeout=60)
        kinds[kind] += 1
    return kinds


def _to_file(path: Path, messages: Iterable[GeneratedMessage]) -> Counter[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".parquet", ".pq"):
        return _to_parquet(path, messages)
    kinds: Counter[str] = Counter()
    with path.open("wb") as handle:
        for message in messages:
            if not message.value or b"\n" in message.value:
                kinds[f"skipped_{message.kind}"] += 1  # JSONL holds one non-empty line each
                continue
            handle.write(message.value + b"\n")
            kinds[message.kind] += 1
    return kinds


def _to_parquet(path: Path, messages: Iterable[GeneratedMessage]) -> Counter[str]:
    """Raw messages as Parquet rows: any bytes fit, in arrival order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    kinds: Counter[str] = Counter()
    columns: dict[str, list] = {"key": [], "value": [], "event_time_ms": []}
    for message in messages:
        columns["key"].append(message.key)
        columns["value"].append(message.value)
        columns["event_time_ms"].append(message.timestamp_ms)
        kinds[message.kind] += 1
    schema = pa.schema(
        [("key", pa.binary()), ("value", pa.binary()), ("event_time_ms", pa.int64())]
    )
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)
    return kinds
