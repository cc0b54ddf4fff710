"""Putting generated messages to a Kinesis stream: PutRecords in batches of 500, refused
entries retried, the message key as partition key."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from beam_pipelines.feeds.delivery import OnLanded, paced
from beam_pipelines.feeds.tweets import GeneratedMessage
from schemas.errors import SourceUnavailableError

__all__ = ["ensure_stream", "put_records"]

_BATCH = 500  # the most PutRecords takes in one call
_ATTEMPTS = 10


def ensure_stream(client: Any, stream: str, shards: int) -> None:
    """Creates ``stream`` with ``shards`` shards unless it exists; returns once it is active."""
    try:
        client.describe_stream_summary(StreamName=stream)
    except Exception:
        client.create_stream(StreamName=stream, ShardCount=shards)
        waiter = client.get_waiter("stream_exists")
        waiter.wait(StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300})


def put_records(
    client: Any,
    stream: str,
    messages: Iterable[GeneratedMessage],
    *,
    rate_per_s: float | None = None,
    patience_s: float = 0.0,
    on_landed: OnLanded | None = None,
) -> Counter[str]:
    """Puts ``messages`` to ``stream`` in order, retrying the entries Kinesis refuses.

    Args:
        client: a boto3 Kinesis client (see :func:`transforms.sources.kinesis.kinesis_client`).
        stream: an existing stream (see :func:`ensure_stream`).
        messages: what to write; a message without a key gets the partition key ``-``.
        rate_per_s: messages per second at most (None: batches of 500 back to back).
        patience_s: how long to keep calling while the endpoint cannot be reached.
        on_landed: told the shard and sequence number of each message once it is stored.

    Returns:
        How many messages of each kind were put.

    Raises:
        SourceUnavailableError: when entries are still refused after 10 attempts.
    """
    kinds: Counter[str] = Counter()
    for batch in paced(messages, rate_per_s=rate_per_s, most=_BATCH):
        pending = batch
        for _ in range(_ATTEMPTS):
            answer = _put(client, stream, pending, patience_s)
            pending = _refused(pending, answer["Records"], kinds, on_landed)
            if not pending:
                break
        else:
            raise SourceUnavailableError(f"Kinesis stream {stream} refused {len(pending)} records")
    return kinds


def _put(client: Any, stream: str, batch: list[GeneratedMessage], patience_s: float) -> Any:
    """One PutRecords call, repeated while the endpoint is down for at most ``patience_s``."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    entries = [
        {"Data": m.value or b"", "PartitionKey": (m.key or b"-").decode("utf-8", "replace")}
        for m in batch
    ]
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return client.put_records(StreamName=stream, Records=entries)
        except (BotoConnectionError, HTTPClientError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.5)


def _refused(
    batch: list[GeneratedMessage],
    results: list[dict[str, Any]],
    kinds: Counter[str],
    on_landed: OnLanded | None,
) -> list[GeneratedMessage]:
    """Counts the stored messages of ``batch`` and returns the refused ones, in order."""
    refused = []
    for message, result in zip(batch, results, strict=True):
        if "ErrorCode" in result:
            refused.append(message)
            continue
        kinds[message.kind] += 1
        if on_landed is not None:
            on_landed(result["ShardId"], result["SequenceNumber"], message)
    return refused
