"""Decode Records against a schema registry: Confluent-framed Avro or JSON, or plain JSON.

Bad input never raises out of this transform; it becomes a dead letter whose
``error_type`` says why:

==================  ==========================================================
``NullValue``       the message has no value (a tombstone)
``EmptyValue``      the value is zero bytes
``BadMagicByte``    the first byte is neither 0 (a Confluent frame) nor JSON
``TruncatedPayload`` the frame is shorter than its header, or Avro data ends early
``UnknownSchemaId`` the frame names a schema id the registry does not know
``SubjectMismatch`` the frame's schema belongs to another subject
``FormatMismatch``  the frame's schema is Avro where JSON is expected, or back
``IncompatibleSchema`` the writer's Avro schema cannot be resolved to the reader's
``CorruptPayload``  Avro bytes that do not decode, or bytes left after the record
``NotUtf8``, ``InvalidJson``  JSON payloads that are not text / not JSON
``SchemaViolation`` the value breaks its schema (the message names the path)
``ReservedField``   the value uses a coordinate field name (``_record_id``, ...)
``Unrepresentable`` JSON that no UTF-8 text or 64-bit column holds: a lone
                    surrogate escape (``"\\ud800"``), an integer beyond 64 bits,
                    a number beyond a double
``RecordTooLarge``  value, key and headers hold more than ``max_record_bytes``
``UnreadableHeaders`` the source could not read the headers (a Kafka header name
                    that is not UTF-8)
==================  ==========================================================

A registry that cannot be reached is not the record's fault: that error is
raised, so the runner retries the bundle instead of dead-lettering good data.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from schemas.base import RegisteredSchema, SchemaNotFoundError, SchemaRegistry, Version
from schemas.codecs import Codec, DecodeError, JsonCodec, codec_for
from schemas.errors import ConfigError
from schemas.registry import LocalFileRegistry
from schemas.wire import FramingError, is_framed, unframe
from transforms.batches import RowWise, same_face
from transforms.deadletter import DEAD_LETTER_TAG, dead_letter
from transforms.gc_tuning import freeze_heap_once
from transforms.record import (
    COORDINATE_FIELDS,
    ORIGINAL_FIELDS,
    UNREADABLE_HEADER_PREFIX,
    Record,
    coordinates_of,
    originals_of,
)

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "DecodeAndValidate",
    "RecordDecoder",
    "Rejected",
    "record_bytes",
]

Format = Literal["auto", "avro", "json"]
_FORMATS = ("auto", "avro", "json")
_STAGE = "decode"
# Bytes that cannot start a JSON text (control characters other than whitespace).
_NOT_JSON_START = frozenset(range(0x01, 0x20)) - {0x09, 0x0A, 0x0D}
_UNKNOWN_ID_RETRY_S = 30.0
# Records carrying more bytes than this are dead letters before decoding.
DEFAULT_MAX_RECORD_BYTES = 1 << 20
_RESERVED = frozenset(COORDINATE_FIELDS + ORIGINAL_FIELDS)


class Rejected(DecodeError):
    """A record the decoder turns into a dead letter.

    Attributes:
        reason: the dead-letter ``error_type``.
        schema_id: the writer schema id the record named, when it named one.
    """

    def __init__(self, reason: str, message: str, schema_id: int | None = None) -> None:
        super().__init__(reason, message)
        self.schema_id = schema_id


class RecordDecoder:
    """Decodes Record values for one reader schema; plain Python, reused by the DoFn.

    Args:
        registry: where writer schemas are looked up by the ids in frames.
        reader: the schema (subject version) values are decoded into.
        fmt: ``"auto"`` accepts frames of the reader's format and, for JSON subjects,
            plain unframed JSON; ``"avro"`` accepts only Avro frames; ``"json"``
            accepts JSON frames and plain JSON.

    Example:
        >>> from schemas.codecs import encode_framed
        >>> registry = LocalFileRegistry()
        >>> v1 = registry.get("vehicle_telemetry", 1)
        >>> decoder = RecordDecoder(registry, registry.latest("vehicle_telemetry"))
        >>> value = encode_framed(v1, {"vehicle_id": "v1", "ts": 0, "speed_kph": 50.0,
        ...                            "engine_temp_c": 90.0, "lat": 52.5, "lon": 13.4})
        >>> decoded = decoder.decode(value)
        >>> decoded["vehicle_id"], decoded["fuel_level_pct"]
        ('v1', None)
        >>> decoder.decode(b"\\x07junk")
        Traceback (most recent call last):
        ...
        transforms.validate.Rejected: expected magic byte 0 (a Confluent frame), got 0x07
    """

    def __init__(
        self, registry: SchemaRegistry, reader: RegisteredSchema, fmt: Format = "auto"
    ) -> None:
        self._registry = registry
        self._reader = reader
        self._format = fmt
        self._codecs: dict[int, Codec] = {}
        self._unknown_until: dict[int, float] = {}
        self._plain = JsonCodec(reader.schema) if reader.format == "json" else None

    @property
    def reader(self) -> RegisteredSchema:
        """The schema values are decoded into."""
        return self._reader

    def decode(self, value: bytes | None) -> dict[str, Any]:
        """The decoded, validated value as a dict.

        Raises:
            Rejected: the record is bad (see the module docs for the reasons).
            RegistryUnavailableError: the registry could not be asked.
        """
        if value is None:
            raise Rejected("NullValue", "the message has no value (null / tombstone)")
        if not value:
            raise Rejected("EmptyValue", "the message value is empty")
        decoded = self._decode_framed(value) if is_framed(value) else self._decode_plain(value)
        return _as_row(decoded)

    def _decode_plain(self, value: bytes) -> Any:
        if self._plain is None or self._format == "avro":
            raise Rejected(
                "BadMagicByte", f"expected magic byte 0 (a Confluent frame), got 0x{value[0]:02x}"
            )
        if value[0] in _NOT_JSON_START:
            raise Rejected(
                "BadMagicByte",
                f"expected magic byte 0 or a JSON text, got 0x{value[0]:02x}",
            )
        return _guarded(self._plain, value, self._reader.schema_id)

    def _decode_framed(self, value: bytes) -> Any:
        try:
            schema_id, payload = unframe(value)
        except FramingError as err:
            raise Rejected(err.reason, str(err)) from None
        codec = self._codec(schema_id)
        return _guarded(codec, payload, schema_id)

    def _codec(self, schema_id: int) -> Codec:
        codec = self._codecs.get(schema_id)
        if codec is None:
            codec = self._build_codec(schema_id)
            self._codecs[schema_id] = codec
        return codec

    def _build_codec(self, schema_id: int) -> Codec:
        if time.monotonic() < self._unknown_until.get(schema_id, 0.0):
            raise Rejected(
                "UnknownSchemaId", f"the registry has no schema id {schema_id}", schema_id
            )
        try:
            writer = self._registry.by_id(schema_id)
            subjects = {s for s, _ in self._registry.subject_versions(schema_id)}
        except SchemaNotFoundError:
            self._unknown_until[schema_id] = time.monotonic() + _UNKNOWN_ID_RETRY_S
            raise Rejected(
                "UnknownSchemaId", f"the registry has no schema id {schema_id}", schema_id
            ) from None
        if self._reader.subject not in subjects:
            raise Rejected(
                "SubjectMismatch",
                f"schema id {schema_id} belongs to {sorted(subjects)}, "
                f"not {self._reader.subject!r}",
                schema_id,
            )
        if writer.format != self._reader.format or self._format not in ("auto", writer.format):
            raise Rejected(
                "FormatMismatch",
                f"schema id {schema_id} is {writer.format}; expected {self._reader.format}",
                schema_id,
            )
        try:
            return codec_for(writer, self._reader)
        except Exception as err:  # a registered schema fastavro/fastjsonschema cannot use
            raise Rejected(
                "UnusableSchema", f"schema id {schema_id} cannot be compiled: {err}", schema_id
            ) from None


def _guarded(codec: Codec, payload: bytes | memoryview, schema_id: int) -> Any:
    try:
        return codec.decode(payload)
    except DecodeError as err:
        raise Rejected(err.reason, str(err), schema_id) from None
    except Exception as err:  # the last line of defence: bad bytes never crash the pipeline
        raise Rejected(
            "CorruptPayload", f"decoding failed: {type(err).__name__}: {err}", schema_id
        ) from None


def _check_headers(record: Record) -> None:
    unreadable = [
        h.name[len(UNREADABLE_HEADER_PREFIX) :]
        for h in record.headers
        if h.name.startswith(UNREADABLE_HEADER_PREFIX)
    ]
    if unreadable:
        raise Rejected(
            "UnreadableHeaders",
            f"header names that are not UTF-8 (hex): {', '.join(unreadable)}; "
            f"kept as {UNREADABLE_HEADER_PREFIX}<hex>",
        )


def _as_row(decoded: Any) -> dict[str, Any]:
    if not isinstance(decoded, dict):
        raise Rejected(
            "SchemaViolation", f"the value is a {type(decoded).__name__}, not an object/record"
        )
    clashes = _RESERVED.intersection(decoded)
    if clashes:
        raise Rejected("ReservedField", f"the value uses reserved field names {sorted(clashes)}")
    return decoded


def record_bytes(record: Record) -> int:
    """The bytes a record carries: its value, key and headers.

    >>> from transforms.record import make_record
    >>> record_bytes(make_record(source="kafka", stream="t", partition=0, position=0,
    ...                          value=b"12345", key=b"k", headers=[("h", b"vv")],
    ...                          event_time_ms=0))
    9
    """
    size = len(record.value or b"") + len(record.key or b"")
    for header in record.headers:
        size += len(header.name.encode("utf-8", "surrogatepass")) + len(header.value or b"")
    return size


def _check_size(record: Record, limit: int) -> None:
    size = record_bytes(record)
    if size > limit:
        raise Rejected(
            "RecordTooLarge",
            f"the record is {size:,} bytes (value, key and headers); "
            f"the limit is {limit:,} (max_record_bytes)",
        )


class _DecodeDoFn(RowWise):
    def __init__(
        self,
        registry: SchemaRegistry,
        reader: RegisteredSchema,
        fmt: Format,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        self._registry = registry
        self._reader = reader
        self._format = fmt
        self._max_record_bytes = max_record_bytes
        self._decoder: RecordDecoder | None = None
        self._decoded = Metrics.counter("dataplane.decode", "decoded")
        self._rejected = Metrics.counter("dataplane.decode", "dead_letters")

    def setup(self) -> None:
        self._decoder = RecordDecoder(self._registry, self._reader, self._format)
        freeze_heap_once()  # see transforms.gc_tuning: worker processes of any runner

    def passed(self, count: int) -> None:
        self._decoded.inc(count)

    def one(self, record: Record) -> Any:
        """The record's row, or its dead letter (a ``TaggedOutput``)."""
        assert self._decoder is not None
        try:
            _check_size(record, self._max_record_bytes)
            _check_headers(record)
            row = self._decoder.decode(record.value)
        except Rejected as err:
            self._rejected.inc()
            Metrics.counter("dataplane.decode", f"dead_letters.{err.reason}").inc()
            return TaggedOutput(
                DEAD_LETTER_TAG,
                dead_letter(
                    record,
                    stage=_STAGE,
                    error_type=err.reason,
                    message=str(err),
                    schema_subject=self._reader.subject,
                    schema_id=err.schema_id,
                ),
            )
        row.update(coordinates_of(record))
        row.update(originals_of(record))
        return row


class DecodeAndValidate(beam.PTransform):
    """Decodes Records with a registry's schemas and validates them.

    Args:
        registry: where schemas come from: a :class:`~schemas.LocalFileRegistry`,
            a :class:`~schemas.ConfluentRegistry`, or ``None`` for the schemas
            packaged with this library.
        subject: the subject values must belong to, e.g. ``"vehicle_telemetry"``.
        version: the reader version values are decoded into (Avro fields it adds take
            their defaults); ``"latest"`` by default, pinned when the pipeline is built.
        format: ``"auto"`` (the subject's format; JSON subjects also accept unframed
            JSON), ``"avro"`` or ``"json"``.
        max_record_bytes: records carrying more bytes (value, key and headers) are
            ``RecordTooLarge`` dead letters, before any decoding (1 MiB by default).

    Returns:
        A pair ``(rows, dead_letters)``: rows are dicts (the value's fields plus the
        Record's coordinate fields ``_record_id``, ``_source``, ... and its produced
        ``_key``, ``_value`` and ``_headers``, which later stages' dead letters keep),
        dead letters are :class:`~transforms.deadletter.DeadLetter`.

    Raises:
        ConfigError: when the subject or version is unknown, or ``format`` is not one
            of auto/avro/json or contradicts the subject's format.

    Example:
        >>> import apache_beam as beam
        >>> from schemas.codecs import encode_framed
        >>> from transforms.record import make_record
        >>> registry = LocalFileRegistry()
        >>> reading = {"vehicle_id": "v1", "ts": 0, "speed_kph": 50.0, "engine_temp_c": 90.0,
        ...            "lat": 52.5, "lon": 13.4}
        >>> values = [encode_framed(registry.get("vehicle_telemetry", 1), reading), b"\\x00\\x01"]
        >>> records = [make_record(source="kafka", stream="t", partition=0, position=i,
        ...                        value=v, event_time_ms=0) for i, v in enumerate(values)]
        >>> with beam.Pipeline() as p:
        ...     rows, dead = (p | beam.Create(records)
        ...                   | DecodeAndValidate(registry, subject="vehicle_telemetry"))
        ...     _ = rows | beam.Map(lambda r: print("row", r["vehicle_id"], r["_position"]))
        ...     _ = dead | beam.Map(lambda d: print("dead", d.error_type, d.record.position))
        row v1 0
        dead TruncatedPayload 1
    """

    def __init__(
        self,
        registry: SchemaRegistry | None = None,
        *,
        subject: str,
        version: Version = "latest",
        format: Format = "auto",
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
    ) -> None:
        super().__init__()
        if format not in _FORMATS:
            raise ConfigError("format", f"expected one of {', '.join(_FORMATS)}, got {format!r}")
        if max_record_bytes <= 0:
            raise ConfigError("max_record_bytes", f"must be positive, got {max_record_bytes}")
        self._max_record_bytes = max_record_bytes
        self._registry = registry if registry is not None else LocalFileRegistry()
        try:
            self._reader = self._registry.get(subject, version)
        except SchemaNotFoundError as err:
            raise ConfigError("subject", str(err)) from None
        if format != "auto" and format != self._reader.format:
            raise ConfigError(
                "format", f"subject {subject!r} is {self._reader.format}, not {format}"
            )
        self._format: Format = format

    def expand(self, records: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        dofn = _DecodeDoFn(self._registry, self._reader, self._format, self._max_record_bytes)
        decode = same_face(beam.ParDo(dofn), records)
        return records | "Decode" >> decode.with_outputs(DEAD_LETTER_TAG, main="rows")

    def display_data(self) -> dict[str, Any]:
        return {
            "registry": repr(self._registry),
            "subject": self._reader.subject,
            "version": self._reader.version,
            "schema_id": self._reader.schema_id,
            "format": self._format,
            "max_record_bytes": self._max_record_bytes,
        }
