"""The Record envelope every source emits, with a deterministic schema coder.

(No ``from __future__ import annotations`` here: Beam reads the NamedTuple
annotations at run time to build the schema coder.)

A Record keeps the raw bytes of a message together with its source coordinates
(source kind, stream, partition, position). ``record_id`` is derived from those
coordinates only, so the same message read twice has the same id: sinks rely on
that to stay idempotent.
"""

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Optional

import apache_beam as beam

__all__ = [
    "COORDINATE_FIELDS",
    "ORIGINAL_FIELDS",
    "UNREADABLE_HEADER_PREFIX",
    "Header",
    "Record",
    "coordinates_of",
    "make_record",
    "make_record_id",
    "originals_of",
    "unreadable_headers",
]


class Header(NamedTuple):
    """One message header (Kafka header, Pub/Sub attribute)."""

    name: str
    value: Optional[bytes]  # noqa: UP045 (Beam's schema inference needs Optional)


class Record(NamedTuple):
    """A message as read from a source, before any decoding.

    Attributes:
        record_id: stable id derived from (source, stream, partition, position).
        source: source kind: ``"kafka"``, ``"kinesis"``, ``"pubsub"`` or ``"file"``.
        stream: topic, stream name, subscription or file path.
        partition: partition number or shard id, as text.
        position: offset, sequence number or message id, as text (Kinesis sequence
            numbers exceed 64 bits, so text is the one type that fits every source).
        key: message key, if any.
        value: message payload; ``None`` for a Kafka tombstone.
        headers: message headers in source order.
        event_time_ms: event time in epoch milliseconds (the source's record timestamp).
        prev_position: the position of the record read before this one from the same
            partition, ``"start"`` for the first record after a configured start
            position, ``None`` where the source keeps no order (files, Pub/Sub). Sinks
            chain these links to know which positions are fully committed even where
            offsets have gaps or records arrive out of order.
    """

    record_id: str
    source: str
    stream: str
    partition: str
    position: str
    key: Optional[bytes]  # noqa: UP045 (Beam's schema inference needs Optional)
    value: Optional[bytes]  # noqa: UP045 (Beam's schema inference needs Optional)
    headers: Sequence[Header]
    event_time_ms: int
    prev_position: Optional[str] = None  # noqa: UP045 (Beam's schema inference needs Optional)


# Headers a source could not hand out as (str, bytes) pairs are kept under names
# starting with this: a Kafka header name that is not UTF-8 as the hex of its
# bytes, with its value as produced. The decoder turns a record with any such
# header into an ``UnreadableHeaders`` dead letter, key, value and headers kept.
UNREADABLE_HEADER_PREFIX = "dataplane.unreadable_header:"


def unreadable_headers(error: BaseException) -> list[Header]:
    """The headers of a record whose own headers could not be read at all.

    >>> unreadable_headers(SystemError("bad name"))[0].name
    'dataplane.unreadable_header:unknown'
    """
    reason = f"{type(error).__name__}: {error}".encode("utf-8", "backslashreplace")
    return [Header(UNREADABLE_HEADER_PREFIX + "unknown", reason)]


beam.coders.registry.register_coder(Header, beam.coders.RowCoder)
beam.coders.registry.register_coder(Record, beam.coders.RowCoder)

# Keys under which decoded rows (plain dicts) carry their Record's coordinates.
COORDINATE_FIELDS = (
    "_record_id",
    "_source",
    "_stream",
    "_partition",
    "_position",
    "_event_time_ms",
    "_prev_position",
)


# Keys under which decoded rows carry what their Record held besides the decoded
# value: the produced key, value bytes and headers. A stage that rejects the row
# later builds its dead letter from these, so every dead letter keeps the record
# as it was produced. Sinks write only the fields of their schema.
ORIGINAL_FIELDS = ("_key", "_value", "_headers")


def make_record_id(source: str, stream: str, partition: str, position: str) -> str:
    """Returns the stable id of the message at these coordinates (32 hex characters).

    The id is the BLAKE2b digest (16 bytes) of the coordinates joined by a unit
    separator, so it is the same in every process and on every machine, and moving
    a digit from one coordinate to the next changes it:

    >>> make_record_id("kafka", "tweets", "0", "42")
    'cbe0227983ffd5246672cedcc97acb13'
    >>> make_record_id("kafka", "tweets", "04", "2")
    '566da5164d15c1ffc43393f0c1313312'
    """
    text = "\x1f".join((source, stream, partition, position))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def make_record(
    *,
    source: str,
    stream: str,
    partition: str | int,
    position: str | int,
    value: bytes | None,
    event_time_ms: int,
    key: bytes | None = None,
    headers: Sequence[tuple[str, bytes | None]] = (),
    prev_position: str | None = None,
) -> Record:
    """Builds a Record, deriving its ``record_id`` from the coordinates.

    >>> r = make_record(source="kafka", stream="t", partition=0, position=7, value=b"{}",
    ...                 event_time_ms=0)
    >>> (r.partition, r.position, r.value)
    ('0', '7', b'{}')
    """
    partition, position = str(partition), str(position)
    return Record(
        record_id=make_record_id(source, stream, partition, position),
        source=source,
        stream=stream,
        partition=partition,
        position=position,
        key=key,
        value=value,
        headers=[Header(name, val) for name, val in headers],
        event_time_ms=event_time_ms,
        prev_position=prev_position,
    )


def coordinates_of(record: Record) -> dict[str, Any]:
    """Returns the coordinate fields that decoded rows carry for ``record``."""
    return {
        "_record_id": record.record_id,
        "_source": record.source,
        "_stream": record.stream,
        "_partition": record.partition,
        "_position": record.position,
        "_event_time_ms": record.event_time_ms,
        "_prev_position": record.prev_position,
    }


def originals_of(record: Record) -> dict[str, Any]:
    """Returns the original fields (see ``ORIGINAL_FIELDS``) decoded rows carry for ``record``.

    >>> r = make_record(source="kafka", stream="t", partition=0, position=7, value=b"{}",
    ...                 event_time_ms=0, key=b"k", headers=[("h", b"1")])
    >>> originals_of(r)
    {'_key': b'k', '_value': b'{}', '_headers': [('h', b'1')]}
    """
    return {
        "_key": record.key,
        "_value": record.value,
        "_headers": [(h.name, h.value) for h in record.headers],
    }


def record_from_row(row: Mapping[str, Any], value: bytes | None) -> Record:
    """Rebuilds the Record of a decoded row (for dead letters raised after decoding).

    The produced key, value and headers when the row carries them (rows from
    ``DecodeAndValidate`` do); otherwise ``value`` and no key or headers.
    """
    return Record(
        record_id=row["_record_id"],
        source=row["_source"],
        stream=row["_stream"],
        partition=row["_partition"],
        position=row["_position"],
        key=row.get("_key"),
        value=row.get("_value", value),
        headers=[Header(name, val) for name, val in row.get("_headers", ())],
        event_time_ms=row["_event_time_ms"],
        prev_position=row.get("_prev_position"),
    )
