"""Dead letters, all of them: the element, its table row and schema, and replay marks.

Every transform that can reject input returns two outputs: the good elements and
``DeadLetter`` rows. A dead letter keeps the original Record (raw bytes included)
so nothing is lost, and says which stage rejected it and why. In a table (see
:class:`~transforms.sinks.delta.WriteDeadLettersToDelta`) a letter is a row of
:data:`DEAD_LETTER_SCHEMA` plus the record's coordinates; its checkpoints go under
the output's app id with :data:`DLQ_APP_SUFFIX`; ``dataplane dlq replay`` marks the
letters it re-processed with the :data:`REPLAY_COLUMNS` (:func:`mark_replayed`).
"""

import json
import time
from collections.abc import Mapping
from typing import Any, NamedTuple, Optional

import apache_beam as beam
import pyarrow as pa

from transforms.record import Record, coordinates_of

__all__ = [
    "DEAD_LETTER_SCHEMA",
    "DEAD_LETTER_TAG",
    "DLQ_APP_SUFFIX",
    "REPLAYED_OK",
    "REPLAY_COLUMNS",
    "DeadLetter",
    "dead_letter",
    "dead_letter_app_id",
    "dead_letter_row",
    "mark_replayed",
    "row_dead_letter",
]

# The tagged output under which every rejecting DoFn emits its dead letters.
DEAD_LETTER_TAG = "dead_letters"

# A dead-letter table's data columns (the sink adds the record's coordinates).
DEAD_LETTER_SCHEMA = pa.schema(
    [
        pa.field("key", pa.binary()),
        pa.field("value", pa.binary()),
        pa.field(
            "headers",
            pa.list_(pa.struct([pa.field("name", pa.string()), pa.field("value", pa.binary())])),
        ),
        pa.field("stage", pa.string()),
        pa.field("error_type", pa.string()),
        pa.field("message", pa.string()),
        pa.field("schema_subject", pa.string()),
        pa.field("schema_id", pa.int64()),
        pa.field("failed_at_ms", pa.int64()),
    ]
)

# A dead-letter table's app id is its output's with this suffix.
DLQ_APP_SUFFIX = "-dlq"

# The columns a replay sets on the letters it re-processed (Delta type names);
# appends leave them null, and a table written before any replay gains them then.
REPLAY_COLUMNS = (("replay_id", "string"), ("replayed_at_ms", "long"), ("replay_outcome", "string"))
# ``replay_outcome`` of a letter whose replay wrote it to the output.
REPLAYED_OK = "written"


def dead_letter_app_id(app_id: str) -> str:
    """The app id of the dead-letter table of the output whose app id is ``app_id``.

    >>> dead_letter_app_id("sentiment")
    'sentiment-dlq'
    """
    return app_id + DLQ_APP_SUFFIX


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
        **coordinates_of(record),
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


def mark_replayed(
    table_uri: str,
    outcomes: Mapping[str, str],
    replay_id: str,
    storage_options: dict[str, str] | None = None,
) -> None:
    """Sets the :data:`REPLAY_COLUMNS` of the letters ``outcomes`` names by record id.

    ``outcomes`` maps a letter's ``_record_id`` to its ``replay_outcome``
    (:data:`REPLAYED_OK`, or why it failed again). A table without the columns
    gains them first.
    """
    from deltalake import DeltaTable, Field
    from deltalake.schema import PrimitiveType

    table = DeltaTable(table_uri, storage_options=storage_options)
    have = set(table.schema().to_arrow().names)
    missing = [
        Field(name, PrimitiveType(kind), nullable=True)
        for name, kind in REPLAY_COLUMNS
        if name not in have
    ]
    if missing:
        table.alter.add_columns(missing)
    now_ms = int(time.time() * 1000)
    marks = pa.table(
        {
            "_record_id": list(outcomes),
            "replay_id": [replay_id] * len(outcomes),
            "replayed_at_ms": pa.array([now_ms] * len(outcomes), pa.int64()),
            "replay_outcome": list(outcomes.values()),
        }
    )
    columns = [name for name, _kind in REPLAY_COLUMNS]
    (
        table.merge(
            marks, predicate="t._record_id = s._record_id", source_alias="s", target_alias="t"
        )
        .when_matched_update({c: f"s.{c}" for c in columns})
        .execute()
    )
