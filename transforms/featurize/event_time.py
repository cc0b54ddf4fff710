"""ExtractEventTime: stamps each row with the event time carried in one of its fields."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.window import TimestampedValue

from schemas.errors import ConfigError
from transforms.batches import Batch, same_face, split_batch
from transforms.deadletter import DEAD_LETTER_TAG, row_dead_letter

__all__ = ["ExtractEventTime", "event_time_ms"]

# Beam timestamps must stay inside its representable range; readings dated outside
# year 1..9999 are bad data, not event times.
_MIN_MS = -62135596800000
_MAX_MS = 253402300799999


def event_time_ms(value: Any) -> int:
    """Epoch milliseconds of a field value: an aware datetime, an int/float of epoch ms,
    or an ISO-8601 string with a UTC offset.

    Raises ValueError with the reason when the value cannot be an event time.

    >>> from datetime import timezone
    >>> event_time_ms(datetime(2026, 11, 1, 8, tzinfo=timezone.utc))
    1793520000000
    >>> event_time_ms("2026-11-01T08:00:00.250+00:00")
    1793520000250
    >>> event_time_ms(datetime(2026, 11, 1))
    Traceback (most recent call last):
    ValueError: datetime 2026-11-01 00:00:00 has no time zone
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a timestamp, got bool {value}")
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value[:40]!r} is not an ISO-8601 timestamp") from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"datetime {value} has no time zone")
        return _in_range(round(value.timestamp() * 1000))
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"timestamp {value} is not finite")
        return _in_range(int(value))
    raise ValueError(f"expected a timestamp, got {type(value).__name__}")


def _in_range(ms: int) -> int:
    if not _MIN_MS <= ms <= _MAX_MS:
        raise ValueError(f"timestamp {ms} ms is outside years 1..9999")
    return ms


class _ExtractEventTimeDoFn(beam.DoFn):
    def __init__(self, field: str) -> None:
        self._field = field

    def process(self, element: dict[str, Any] | Batch) -> Iterator[Any]:
        if not isinstance(element, Batch):
            result = self._stamped(element)
            if isinstance(result, TaggedOutput):
                yield result
            else:
                yield TimestampedValue(result, result["_event_time_ms"] / 1000)
            return
        rows, letters = split_batch(element, self._stamped)
        yield from letters
        if rows:  # stamped with its earliest row; each row carries its own time
            yield TimestampedValue(rows, min(r["_event_time_ms"] for r in rows) / 1000)

    def _stamped(self, row: dict[str, Any]) -> Any:
        """The row with ``_event_time_ms`` from the field, or its dead letter."""
        if row.get(self._field) is None:
            return self._reject(row, "MissingEventTime", f"field {self._field!r} is missing")
        try:
            ms = event_time_ms(row[self._field])
        except ValueError as err:
            return self._reject(row, "InvalidEventTime", f"field {self._field!r}: {err}")
        return {**row, "_event_time_ms": ms}

    def _reject(self, row: dict[str, Any], reason: str, message: str) -> TaggedOutput:
        letter = row_dead_letter(row, stage="event_time", error_type=reason, message=message)
        return TaggedOutput(DEAD_LETTER_TAG, letter)


class ExtractEventTime(beam.PTransform):
    """Sets each row's Beam timestamp (and its ``_event_time_ms``) from a field.

    A :class:`~transforms.batches.Batch` of rows gives a batch stamped with its
    earliest row's time; each of its rows carries its own in ``_event_time_ms``.

    Windowing downstream then works in the time the event happened, not the time
    the source saw it.

    Args:
        field: the field holding the event time (aware datetime, epoch ms, or ISO text).

    Returns:
        ``(rows, dead_letters)``; rows without a usable time are dead letters with
        reason ``MissingEventTime`` or ``InvalidEventTime``.

    Raises:
        ConfigError: an empty field name.

    Example:
        >>> import apache_beam as beam
        >>> rows = [{"ts": 1_000, "_record_id": "a"}, {"ts": None, "_record_id": "b",
        ...         "_source": "file", "_stream": "s", "_partition": "0", "_position": "1",
        ...         "_event_time_ms": 0}]
        >>> with beam.Pipeline() as p:
        ...     timed, dead = p | beam.Create(rows) | ExtractEventTime("ts")
        ...     _ = timed | beam.Map(lambda r, t=beam.DoFn.TimestampParam: print(float(t)))
        ...     _ = dead | beam.Map(lambda d: print(d.error_type))
        1.0
        MissingEventTime
    """

    def __init__(self, field: str = "ts") -> None:
        super().__init__()
        if not field:
            raise ConfigError("field", "expected the name of the event-time field")
        self._field = field

    def expand(self, rows: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        dofn = _ExtractEventTimeDoFn(self._field)
        stamp = same_face(beam.ParDo(dofn), rows)
        return rows | "Stamp" >> stamp.with_outputs(DEAD_LETTER_TAG, main="rows")

    def display_data(self) -> dict[str, Any]:
        return {"field": self._field}
