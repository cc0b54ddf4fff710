"""Checks that a source answers before a pipeline is submitted, waiting up to a limit."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from schemas.errors import ConfigError, SourceUnavailableError
from schemas.secrets import redact_text
from transforms.stop import stop_requested

__all__ = ["wait_for_source"]


def wait_for_source(
    uri: str, *, timeout_s: float, consumer_config: Mapping[str, Any] | None = None
) -> float:
    """Waits until the Kafka broker or Kinesis stream behind ``uri`` answers; returns the wait.

    librdkafka and botocore retry connections by themselves; this bounds the whole
    wait, so a source that is down fails fast with a message naming it, and one
    that comes up within ``timeout_s`` is used. Other sources are not checked.

    Raises:
        SourceUnavailableError: nothing answered within ``timeout_s`` seconds.

    >>> wait_for_source("file:///tmp/none/*.jsonl", timeout_s=1)
    0.0
    """
    parts = urlsplit(uri)
    started = time.monotonic()
    if parts.scheme == "kafka":
        _wait_for_kafka(parts.netloc, parts.path.strip("/"), timeout_s, consumer_config or {})
    elif parts.scheme == "kinesis":
        _wait_for_kinesis(parts.netloc + parts.path, parse_qs(parts.query), timeout_s)
    else:
        return 0.0
    return time.monotonic() - started


def _wait_for_kafka(servers: str, topic: str, timeout_s: float, config: Mapping[str, Any]) -> None:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # log_level 0: librdkafka would log every refused connection; the error below says it once.
    settings = {**config, "bootstrap.servers": servers, "log_level": 0}
    settings.pop("group.id", None)
    consumer_only = ("enable.", "allow.auto.create.topics")
    admin = AdminClient({k: v for k, v in settings.items() if not k.startswith(consumer_only)})
    deadline = time.monotonic() + timeout_s
    while True:  # in short waits, so that a Ctrl-C meanwhile is seen
        try:
            # Every topic's metadata, not the topic's own: a request naming a topic makes
            # brokers that auto-create topics create it.
            topics = admin.list_topics(
                timeout=max(min(1.0, deadline - time.monotonic()), 0.1)
            ).topics
        except KafkaException as err:
            if stop_requested():
                raise KeyboardInterrupt from None
            if time.monotonic() < deadline:
                continue
            message = (
                f"--source: no Kafka broker answered at {servers} within {timeout_s:.0f}s "
                f"(--source_timeout_s): {err.args[0].str() if err.args else err}"
            )
            raise SourceUnavailableError(redact_text(message, settings)) from None
        if topic and topic not in topics:
            raise ConfigError(
                "--source",
                f"Kafka topic {topic!r} does not exist at {servers} (a read never creates "
                f"one); topics there: {_some(sorted(topics))}",
            )
        return


def _some(names: list[str], most: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:most])
    return (shown + f" and {len(names) - most} more") if len(names) > most else shown or "none"


def _wait_for_kinesis(stream: str, query: dict[str, list[str]], timeout_s: float) -> None:
    from transforms.sources.kinesis import kinesis_client

    region, endpoint = query.get("region", []), query.get("endpoint", [])
    client = kinesis_client(region[-1] if region else None, endpoint[-1] if endpoint else None)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.describe_stream_summary(StreamName=stream.strip("/"))
            return
        except Exception as err:
            if stop_requested():
                raise KeyboardInterrupt from None
            if "ResourceNotFound" in type(err).__name__ or time.monotonic() >= deadline:
                raise SourceUnavailableError(
                    f"--source: Kinesis stream {stream!r} did not answer within "
                    f"{timeout_s:.0f}s (--source_timeout_s): {err}"
                ) from None
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
