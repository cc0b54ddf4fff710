"""Producing generated messages to a Kafka topic: keyed, acks=all, partitions by key hash."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from typing import Any

from beam_pipelines.feeds.delivery import OnLanded, paced
from beam_pipelines.feeds.tweets import GeneratedMessage
from schemas.errors import SourceUnavailableError
from transforms.sources.kafka_admin import ensure_topic

__all__ = ["produce"]


def produce(
    bootstrap_servers: str,
    topic: str,
    messages: Iterable[GeneratedMessage],
    *,
    partitions: int = 3,
    rate_per_s: float | None = None,
    on_landed: OnLanded | None = None,
) -> Counter[str]:
    """Produces ``messages`` to ``topic`` (created with ``partitions`` when missing).

    Each message keeps its key (the partitioner hashes it) and its timestamp; the
    producer is idempotent (acks=all), so a retry never writes a message twice.

    Args:
        bootstrap_servers: ``HOST:PORT[,HOST:PORT...]``.
        topic: the topic to write to.
        messages: what to write, in order.
        partitions: the partition count of a topic created here.
        rate_per_s: messages per second at most (None: as fast as the broker takes them).
        on_landed: told the partition and offset of each message once it is stored.

    Returns:
        How many messages of each kind were produced.

    Raises:
        SourceUnavailableError: when the topic cannot be created or a message was not
            delivered.
    """
    ensure_topic(bootstrap_servers, topic, partitions=partitions)
    producer = _producer(bootstrap_servers)
    failures: list[str] = []
    kinds: Counter[str] = Counter()
    for batch in paced(messages, rate_per_s=rate_per_s):
        for message in batch:
            report = functools.partial(_delivered, message, failures, on_landed)
            _send(producer, topic, message, report)
            kinds[message.kind] += 1
            producer.poll(0)
    if producer.flush(30) or failures:
        raise SourceUnavailableError(
            f"{len(failures)} messages were not delivered to {topic}: {failures[:1]}"
        )
    return kinds


def _producer(bootstrap_servers: str) -> Any:
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "linger.ms": 20,
            "acks": "all",
            "enable.idempotence": True,
            "log.connection.close": False,
        }
    )


def _send(producer: Any, topic: str, message: GeneratedMessage, report: Any) -> None:
    """One produce call, waiting for room while the producer's queue is full."""
    while True:
        try:
            producer.produce(
                topic,
                key=message.key,
                value=message.value,
                timestamp=message.timestamp_ms,
                on_delivery=report,
            )
            return
        except BufferError:
            producer.poll(0.05)


def _delivered(
    message: GeneratedMessage,
    failures: list[str],
    on_landed: OnLanded | None,
    err: object,
    stored: Any,
) -> None:
    if err is not None:
        failures.append(str(err))
    elif on_landed is not None:
        on_landed(str(stored.partition()), str(stored.offset()), message)
