"""ReadFromPubSub: Google Cloud Pub/Sub messages as Records, streaming or bounded.

Streaming wraps Beam's native read (Dataflow and streaming runners): attributes,
``id_label`` and ``timestamp_attribute`` pass through to it. On the local runner
(``beam_pipelines/launch/local_streaming.py``, defect 6) a message is acknowledged when it is
pulled, before its row is committed: a stop commits everything pulled, a killed
process loses what it had pulled and not committed. The bounded mode
pulls synchronously until the subscription is empty (or ``max_records``) for
batch runs, backfills and tests, and acknowledges a message only after a shuffle,
once the records it became have been handed on: a failed run leaves its messages
to be delivered again, never lost. Messages are identified by ``message_id`` (or
the ``id_label`` attribute), so a redelivery yields the same ``record_id``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from schemas.errors import ConfigError, SourceUnavailableError
from transforms.progress import note
from transforms.record import Header, Record, make_record

__all__ = ["ReadFromPubSub", "event_time_ms", "message_to_record"]

_PULL_BATCH = 1000


def event_time_ms(
    attributes: Mapping[str, str], publish_ms: int, timestamp_attribute: str | None
) -> int:
    """A message's event time: ``timestamp_attribute`` (epoch ms or RFC 3339), else publish time.

    >>> event_time_ms({"ts": "2024-01-01T00:00:01Z"}, 5, "ts"), event_time_ms({"ts": "?"}, 5, "ts")
    (1704067201000, 5)
    """
    if not timestamp_attribute or timestamp_attribute not in attributes:
        return publish_ms
    raw = attributes[timestamp_attribute]
    if raw.lstrip("-").isdigit():
        return int(raw)
    try:
        return int(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return publish_ms


def message_to_record(
    *,
    stream: str,
    data: bytes,
    attributes: Mapping[str, str],
    message_id: str,
    publish_ms: int,
    ordering_key: str = "",
    timestamp_attribute: str | None = None,
    id_label: str | None = None,
) -> Record:
    """The Record for one Pub/Sub message.

    ``position`` is the message id (or the ``id_label`` attribute), ``partition`` the
    ordering key, ``key`` the ordering key's bytes (None without one), headers the
    attributes, and event time the ``timestamp_attribute`` (epoch ms or RFC 3339)
    or else the publish time.

    >>> r = message_to_record(stream="projects/p/subscriptions/s", data=b"x",
    ...                       attributes={"ts": "1000"}, message_id="42", publish_ms=5,
    ...                       timestamp_attribute="ts")
    >>> r.position, r.event_time_ms, r.headers[0].name
    ('42', 1000, 'ts')
    """
    position = attributes.get(id_label, message_id) if id_label else message_id
    return make_record(
        source="pubsub",
        stream=stream,
        partition=ordering_key,
        position=position,
        key=ordering_key.encode("utf-8") if ordering_key else None,
        value=data,
        headers=[Header(k, v.encode("utf-8")) for k, v in sorted(attributes.items())],
        event_time_ms=event_time_ms(attributes, publish_ms, timestamp_attribute),
    )


@dataclass(frozen=True)
class _PullSettings:
    """How a Pub/Sub read pulls and turns messages into Records."""

    max_records: int
    timestamp_attribute: str | None
    id_label: str | None
    pull_timeout_s: float
    ack_deadline_s: int


class _PullDoFn(beam.DoFn):
    """Pulls a subscription until it is empty or the budget is spent; emits (record, ack id)."""

    def __init__(self, settings: _PullSettings) -> None:
        self._settings = settings
        self._client: Any = None
        self._read = Metrics.counter("dataplane.pubsub", "records_read")

    def setup(self) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self._client = pubsub_v1.SubscriberClient()

    def teardown(self) -> None:
        if self._client is not None:
            self._client.close()

    def process(self, subscription: str) -> Iterator[tuple[Record, str]]:
        budget = self._settings.max_records or None
        pulled = 0
        while budget is None or pulled < budget:
            messages = self._pull(
                subscription, _PULL_BATCH if budget is None else min(_PULL_BATCH, budget - pulled)
            )
            if not messages:
                return
            self._extend_deadline(subscription, [m.ack_id for m in messages])
            for received in messages:
                pulled += 1
                self._read.inc()
                note("records_read", source="pubsub", stream=subscription)
                yield self._record(subscription, received.message), received.ack_id

    def _pull(self, subscription: str, count: int) -> list[Any]:
        from google.api_core import exceptions

        try:
            answer = self._client.pull(
                request={"subscription": subscription, "max_messages": count},
                timeout=self._settings.pull_timeout_s,
            )
        except exceptions.DeadlineExceeded:
            return []  # nothing arrived within the pull timeout: the subscription is empty
        except exceptions.GoogleAPICallError as err:
            raise SourceUnavailableError(f"pull from {subscription} failed: {err}") from None
        return list(answer.received_messages)

    def _extend_deadline(self, subscription: str, ack_ids: list[str]) -> None:
        self._client.modify_ack_deadline(
            request={
                "subscription": subscription,
                "ack_ids": ack_ids,
                "ack_deadline_seconds": self._settings.ack_deadline_s,
            }
        )

    def _record(self, subscription: str, message: Any) -> Record:
        return message_to_record(
            stream=subscription,
            data=bytes(message.data),
            attributes=dict(message.attributes),
            message_id=str(message.message_id),
            publish_ms=int(message.publish_time.timestamp() * 1000),
            ordering_key=str(message.ordering_key or ""),
            timestamp_attribute=self._settings.timestamp_attribute,
            id_label=self._settings.id_label,
        )


class _AckDoFn(beam.DoFn):
    """Hands records on, then acknowledges their messages at the end of the bundle."""

    def __init__(self, subscription: str) -> None:
        self._subscription = subscription
        self._client: Any = None
        self._pending: list[str] = []
        self._acked = Metrics.counter("dataplane.pubsub", "messages_acked")

    def setup(self) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        self._client = pubsub_v1.SubscriberClient()

    def start_bundle(self) -> None:
        self._pending = []

    def process(self, pair: tuple[Record, str]) -> Iterator[TimestampedValue]:
        record, ack_id = pair
        self._pending.append(ack_id)
        yield TimestampedValue(record, Timestamp(micros=record.event_time_ms * 1000))

    def finish_bundle(self) -> None:
        for start in range(0, len(self._pending), _PULL_BATCH):
            chunk = self._pending[start : start + _PULL_BATCH]
            self._client.acknowledge(request={"subscription": self._subscription, "ack_ids": chunk})
            self._acked.inc(len(chunk))
        self._pending = []


class _NativeToRecord(beam.DoFn):
    def __init__(self, stream: str, settings: _PullSettings) -> None:
        self._stream, self._settings = stream, settings
        self._read = Metrics.counter("dataplane.pubsub", "records_read")

    def process(self, message: Any, timestamp: Any = beam.DoFn.TimestampParam) -> Iterator[Record]:
        self._read.inc()
        note("records_read", source="pubsub", stream=self._stream)
        publish = getattr(message, "publish_time", None)
        publish_ms = int(publish.timestamp() * 1000) if publish else int(timestamp.micros // 1000)
        yield message_to_record(
            stream=self._stream,
            data=bytes(message.data or b""),
            attributes=dict(message.attributes or {}),
            message_id=str(getattr(message, "message_id", "") or ""),
            publish_ms=publish_ms,
            ordering_key=str(getattr(message, "ordering_key", "") or ""),
            timestamp_attribute=self._settings.timestamp_attribute,
            id_label=self._settings.id_label,
        )


class ReadFromPubSub(beam.PTransform):
    """Reads Pub/Sub as :class:`~transforms.record.Record` elements.

    Args:
        subscription: ``projects/P/subscriptions/S``; needed in bounded mode.
        topic: ``projects/P/topics/T``; streaming only (the runner subscribes).
        bounded: pull until the subscription is empty (or ``max_records``), then stop.
        max_records: stop after this many messages (implies ``bounded``).
        timestamp_attribute: an attribute holding event time (epoch ms or RFC 3339).
        id_label: an attribute identifying messages across publishes (deduplication).
        pull_timeout_s: a bounded pull that waits this long without messages ends.
        ack_deadline_s: how long pulled messages stay leased to this read (10-600 s);
            unacknowledged ones are delivered again after it.

    Raises:
        ConfigError: neither or both of subscription/topic, or a topic in bounded mode.

    Example:
        >>> read = ReadFromPubSub(subscription="projects/p/subscriptions/s", bounded=True)
        >>> read.display_data()["mode"]
        'bounded pull'
    """

    def __init__(
        self,
        *,
        subscription: str | None = None,
        topic: str | None = None,
        bounded: bool = False,
        max_records: int = 0,
        timestamp_attribute: str | None = None,
        id_label: str | None = None,
        pull_timeout_s: float = 2.0,
        ack_deadline_s: int = 600,
    ) -> None:
        super().__init__()
        if bool(subscription) == bool(topic):
            raise ConfigError("subscription", "give exactly one of subscription= or topic=")
        self._bounded = bounded or max_records > 0
        if self._bounded and not subscription:
            raise ConfigError("subscription", "a bounded read pulls from a subscription")
        if not 10 <= ack_deadline_s <= 600:
            raise ConfigError("ack_deadline_s", f"must be within 10..600, got {ack_deadline_s}")
        for name, path, kind in (
            ("subscription", subscription, "subscriptions"),
            ("topic", topic, "topics"),
        ):
            if path and (not path.startswith("projects/") or f"/{kind}/" not in path):
                raise ConfigError(name, f"expected projects/PROJECT/{kind}/NAME, got {path!r}")
        self._subscription, self._topic = subscription, topic
        self._settings = _PullSettings(
            max_records=max_records,
            timestamp_attribute=timestamp_attribute,
            id_label=id_label,
            pull_timeout_s=pull_timeout_s,
            ack_deadline_s=ack_deadline_s,
        )

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        if self._bounded:
            assert self._subscription is not None
            return (
                pbegin
                | "Subscription" >> beam.Create([self._subscription])
                | "Pull" >> beam.ParDo(_PullDoFn(self._settings))
                | "HandOn" >> beam.Reshuffle()
                | "Acknowledge"
                >> beam.ParDo(_AckDoFn(self._subscription)).with_output_types(Record)
            )
        native = beam.io.ReadFromPubSub(
            subscription=self._subscription,
            topic=self._topic,
            with_attributes=True,
            timestamp_attribute=self._settings.timestamp_attribute,
            id_label=self._settings.id_label,
        )
        stream = str(self._subscription or self._topic)
        return (
            pbegin
            | "ReadPubSub" >> native
            | "ToRecords"
            >> beam.ParDo(_NativeToRecord(stream, self._settings)).with_output_types(Record)
        )

    def display_data(self) -> dict[str, Any]:
        return {
            "subscription": self._subscription or "",
            "topic": self._topic or "",
            "mode": "bounded pull" if self._bounded else "streaming (Beam's native read)",
            "timestamp_attribute": self._settings.timestamp_attribute or "",
            "id_label": self._settings.id_label or "",
        }
