"""Decode JSON payloads and validate them against a registry schema.

Bad input never raises out of this transform: it becomes a dead letter whose
``error_type`` says why (``NullValue``, ``EmptyValue``, ``NotUtf8``,
``InvalidJson``, ``SchemaViolation``, ``ReservedField``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import fastjsonschema
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from schemas.registry import LocalFileRegistry, RegisteredSchema
from transforms.deadletter import DEAD_LETTER_TAG, dead_letter
from transforms.errors import ConfigError
from transforms.record import COORDINATE_FIELDS, Record, coordinates_of

__all__ = ["DecodeJson"]

_STAGE = "decode"


class _Rejected(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse(value: bytes | None) -> Any:
    if value is None:
        raise _Rejected("NullValue", "the message has no value (null / tombstone)")
    if not value:
        raise _Rejected("EmptyValue", "the message value is empty")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _Rejected("NotUtf8", f"value is not UTF-8: {err}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as err:
        raise _Rejected("InvalidJson", f"value is not JSON: {err}") from None


class _DecodeJsonDoFn(beam.DoFn):
    def __init__(self, schema: RegisteredSchema) -> None:
        self._schema = schema
        self._validate: Any = None
        self._rejected = Metrics.counter("dataplane.decode", "dead_letters")
        self._decoded = Metrics.counter("dataplane.decode", "decoded")

    def setup(self) -> None:
        self._validate = fastjsonschema.compile(self._schema.schema)

    def process(self, record: Record) -> Iterator[Any]:
        try:
            payload = self._check(_parse(record.value))
        except _Rejected as err:
            self._rejected.inc()
            yield TaggedOutput(
                DEAD_LETTER_TAG,
                dead_letter(
                    record,
                    stage=_STAGE,
                    error_type=err.error_type,
                    message=str(err),
                    schema_subject=self._schema.subject,
                    schema_id=self._schema.schema_id,
                ),
            )
            return
        self._decoded.inc()
        payload.update(coordinates_of(record))
        yield payload

    def _check(self, payload: Any) -> dict[str, Any]:
        try:
            self._validate(payload)
        except fastjsonschema.JsonSchemaValueException as err:
            path = ".".join(str(p) for p in err.path) if err.path else "data"
            raise _Rejected("SchemaViolation", f"{err.message} (at {path})") from None
        if not isinstance(payload, dict):
            raise _Rejected("SchemaViolation", "the payload is not a JSON object")
        clashes = sorted(set(payload) & set(COORDINATE_FIELDS))
        if clashes:
            raise _Rejected("ReservedField", f"payload uses reserved field names {clashes}")
        return payload


class DecodeJson(beam.PTransform):
    """Decodes JSON Records and validates them against a subject's JSON Schema.

    Args:
        subject: the registry subject to validate against, e.g. ``"tweet"``.
        version: the subject version, ``"latest"`` by default.
        registry: where schemas come from; the packaged local file registry by default.

    Returns:
        A pair ``(rows, dead_letters)``: rows are dicts (the payload plus the Record's
        coordinate fields ``_record_id``, ``_source``, ...), dead letters are
        :class:`~transforms.deadletter.DeadLetter`.

    Raises:
        ConfigError: when the subject is unknown or is not a JSON Schema subject.

    Example:
        >>> import apache_beam as beam
        >>> from transforms.record import make_record
        >>> good = b'{"id": "1", "text": "hi", "created_at": "2026-01-01T00:00:00Z",'
        >>> good += b' "user": {"id": "u", "handle": "h"}}'
        >>> records = [make_record(source="kafka", stream="t", partition=0, position=i,
        ...                        value=v, event_time_ms=0)
        ...            for i, v in enumerate([good, b"{oops"])]
        >>> with beam.Pipeline() as p:
        ...     rows, dead = p | beam.Create(records) | DecodeJson("tweet")
        ...     _ = rows | beam.Map(lambda r: print("row", r["text"], r["_position"]))
        ...     _ = dead | beam.Map(lambda d: print("dead", d.error_type, d.record.position))
        row hi 0
        dead InvalidJson 1
    """

    def __init__(
        self,
        subject: str,
        *,
        version: int | str = "latest",
        registry: LocalFileRegistry | None = None,
    ) -> None:
        super().__init__()
        registry = registry or LocalFileRegistry()
        try:
            self._schema = registry.get(subject, version)  # type: ignore[arg-type]
        except LookupError as err:
            raise ConfigError("subject", str(err)) from None
        if self._schema.format != "json":
            raise ConfigError("subject", f"{subject!r} is a {self._schema.format} schema, not JSON")

    def expand(self, records: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return records | "DecodeJson" >> beam.ParDo(_DecodeJsonDoFn(self._schema)).with_outputs(
            DEAD_LETTER_TAG, main="rows"
        )

    def display_data(self) -> dict[str, Any]:
        return {"subject": self._schema.subject, "version": self._schema.version}
