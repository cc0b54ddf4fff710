"""One dead-letter schema for every stage of the library.

Every transform that can reject input returns two outputs: the good elements and
``DeadLetter`` rows. A dead letter keeps the original Record (raw bytes included)
so nothing is lost, and says which stage rejected it and why.
"""

import json
import time
from typing import Any, NamedTuple, Optional

import apache_beam as beam

from transforms.record import Record

__all__ = ["DEAD_LETTER_TAG", "DeadLetter", "dead_letter", "dead_letter_row", "row_dead_letter"]

# The tagged output under which every rejecting DoFn emits its dead letters.
DEAD_LETTER_TAG = "dead_letters"


class DeadLetter(NamedTuple):
    """A rejected record and the reason it was rejected.

    Attributes:
        record: the original Record, raw bytes kept.
        stage: the transform that rejected it, e.g. ``"decode"``, ``"validate"``.
        error_type: a stable machine-readable reason, e.g. ``"InvalidJson"``.
        message: a human-readable explanation (never contains secrets).
        schema_subject: the schema subject the record was checked against, if known.
        schema_id: the registry id of that schema, if known.
        failed_at_ms: when the record was rejected, epoch milliseconds.
    """

    record: Record
    stage: str
    error_type: str
    message: str
    schema_subject: Optional[str]  # noqa: UP045 (Beam's schema inference needs Optional)
    schema_id: Optional[int]  # noqa: UP045 (Beam's schema inference needs Optional)
    failed_at_ms: int


beam.coders.registry.register_coder(DeadLetter, beam.coders.RowCoder)

_MAX_MESSAGE_CHARS = 1000


def dead_letter(
    record: Record,
    *,
    stage: str,
    error_type: str,
    message: str,
    schema_subject: str | None = None,
    schema_id: int | None = None,
) -> DeadLetter:
    """Builds a DeadLetter stamped with the current time; long messages are shortened.

    >>> from transforms.record import make_record
    >>> r = make_record(source="kafka", stream="t", partition=0, position=1, value=b"x",
    ...                 event_time_ms=0)
    >>> dead_letter(r, stage="decode", error_type="InvalidJson", message="bad").error_type
    'InvalidJson'
    """
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 1] + "…"
    # A message may quote the record; what UTF-8 cannot hold (lone surrogates) is escaped.
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return DeadLetter(
        record=record,
        stage=stage,
        error_type=error_type,
        message=message,
        schema_subject=schema_subject,
        schema_id=schema_id,
        failed_at_ms=int(time.time() * 1000),
    )


def dead_letter_row(letter: DeadLetter) -> dict[str, Any]:
    """Flattens a dead letter into a table row with the sinks' coordinate columns."""
    record = letter.record
    return {
        "_record_id": record.record_id,
        "_source": record.source,
        "_stream": record.stream,
        "_partition": record.partition,
        "_position": record.position,
        "_event_time_ms": record.event_time_ms,
        "_prev_position": record.prev_position,
        "key": record.key,
        "value": record.value,
        "headers": [{"name": h.name, "value": h.value} for h in record.headers],
        "stage": letter.stage,
        "error_type": letter.error_type,
        "message": letter.message,
        "schema_subject": letter.schema_subject,
        "schema_id": letter.schema_id,
        "failed_at_ms": letter.failed_at_ms,
    }


def row_dead_letter(
    row: dict[str, Any], *, stage: str, error_type: str, message: str
) -> DeadLetter:
    """A dead letter for a row rejected after decoding.

    It keeps the record as produced (key, value bytes, headers) when the row
    carries them, as rows from ``DecodeAndValidate`` do. A row built some other
    way is re-encoded as JSON for the letter's value (coordinates left out: they
    are in the envelope).
    """
    from transforms.record import COORDINATE_FIELDS, ORIGINAL_FIELDS, record_from_row

    value = None
    if "_value" not in row:
        skip = frozenset(COORDINATE_FIELDS + ORIGINAL_FIELDS)
        payload = {k: v for k, v in row.items() if k not in skip}
        text = json.dumps(payload, ensure_ascii=False, default=repr)
        value = text.encode("utf-8", "backslashreplace")
    return dead_letter(
        record_from_row(row, value), stage=stage, error_type=error_type, message=message
    )
