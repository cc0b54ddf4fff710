"""Writing generated messages to a destination named by URI: Kafka, Kinesis, Pub/Sub, a file.

    kafka://HOST:PORT/TOPIC            keyed produce (partition by key hash)
    kinesis://STREAM[?region=R&endpoint=URL]   PutRecords, partition key = message key
    pubsub://projects/P/topics/T       publish; attributes key and ts (event time, ms)
    file:///PATH.jsonl                 one value per line (for replay with file://)
    file:///PATH.parquet               key, value, event_time_ms columns (binary values)

Kinesis streams and Pub/Sub topics are created when missing (``partitions`` shards).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from beam_pipelines.feeds.tweets import GeneratedMessage
from schemas.errors import ConfigError, SourceUnavailableError

__all__ = ["publish"]

_KINESIS_BATCH = 500


def publish(uri: str, messages: Iterable[GeneratedMessage], *, partitions: int = 3) -> Counter[str]:
    """Writes ``messages`` to ``uri``; returns how many of each kind were written.

    Raises:
        ConfigError: for an unknown scheme or a malformed URI.
        SourceUnavailableError: when the destination refuses messages.
    """
    parts = urlsplit(uri)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "kafka":
        from beam_pipelines.generate import produce

        return produce(parts.netloc, parts.path.strip("/"), messages, partitions=partitions)
    if parts.scheme == "kinesis":
        return _to_kinesis(parts.netloc + parts.path.rstrip("/"), query, messages, partitions)
    if parts.scheme == "pubsub":
        return _to_pubsub((parts.netloc + parts.path).strip("/"), messages)
    if parts.scheme == "file":
        return _to_file(Path(parts.netloc + parts.path), messages)
    raise ConfigError(
        "--to", f"expected kafka://, kinesis://, pubsub://projects/P/topics/T or file://; {uri!r}"
    )


def _to_kinesis(
    stream: str, query: dict[str, str], messages: Iterable[GeneratedMessage], shards: int
) -> Counter[str]:
    from transforms.sources.kinesis import kinesis_client

    client = kinesis_client(query.get("region"), query.get("endpoint"))
    _ensure_stream(client, stream, shards)
    kinds: Counter[str] = Counter()
    batch: list[GeneratedMessage] = []
    for message in messages:
        batch.append(message)
        if len(batch) == _KINESIS_BATCH:
            _put_batch(client, stream, batch, kinds)
            batch = []
    if batch:
        _put_batch(client, stream, batch, kinds)
    return kinds


def _ensure_stream(client: object, stream: str, shards: int) -> None:
    try:
        client.describe_stream_summary(StreamName=stream)  # type: ignore[attr-defined]
    except Exception:
        client.create_stream(StreamName=stream, ShardCount=shards)  # type: ignore[attr-defined]
        waiter = client.get_waiter("stream_exists")  # type: ignore[attr-defined]
        waiter.wait(StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})


def _put_batch(
    client: object, stream: str, batch: list[GeneratedMessage], kinds: Counter[str]
) -> None:
    entries = [
        {"Data": m.value or b"", "PartitionKey": (m.key or b"-").decode("utf-8", "replace")}
        for m in batch
    ]
    pending = list(zip(entries, batch, strict=True))
    for _ in range(10):  # retry only the entries Kinesis refused (throttling), in order
        answer = client.put_records(  # type: ignore[attr-defined]
            StreamName=stream, Records=[e for e, _ in pending]
        )
        refused = []
        for (entry, message), result in zip(pending, answer["Records"], strict=True):
            if "ErrorCode" in result:
                refused.append((entry, message))
            else:
                kinds[message.kind] += 1
        if not refused:
            return
        pending = refused
    raise SourceUnavailableError(f"Kinesis stream {stream} refused {len(pending)} records")


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
