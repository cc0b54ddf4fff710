"""Small Kafka admin helpers (topic creation) for generators, demos and tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.errors import SourceUnavailableError
from transforms.sources.kafka_config import redact_text

__all__ = ["ensure_topic"]


def ensure_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    partitions: int = 3,
    config: Mapping[str, Any] | None = None,
    timeout_s: float = 15.0,
) -> int:
    """Creates ``topic`` unless it exists; returns its partition count."""
    settings = {
        "log.connection.close": False,
        **(config or {}),
        "bootstrap.servers": bootstrap_servers,
    }
    admin = AdminClient(settings)
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
        if topic in existing and existing[topic].error is None:
            return len(existing[topic].partitions)
        futures = admin.create_topics([NewTopic(topic, num_partitions=partitions)])
        futures[topic].result(timeout=timeout_s)
    except KafkaException as err:
        message = f"cannot create topic {topic!r} at {bootstrap_servers}: {err}"
        raise SourceUnavailableError(redact_text(message, settings)) from None
    return partitions
