"""CheckBounds: rows whose numeric fields break physical limits become dead letters."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from schemas.errors import ConfigError
from transforms.batches import RowWise, same_face
from transforms.deadletter import DEAD_LETTER_TAG, row_dead_letter

__all__ = ["TELEMETRY_BOUNDS", "Bound", "CheckBounds", "bound_violation"]


@dataclass(frozen=True)
class Bound:
    """An allowed interval for one field; ``None`` leaves that side open.

    ``low_open`` / ``high_open`` exclude the end point itself (``engine_temp_c`` must
    be above 0, not 0).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ConfigError("Bound", f"low {self.low} is above high {self.high}")

    def describe(self) -> str:
        """The interval in mathematical notation, e.g. ``(0, +inf)``.

        >>> Bound(0, 400).describe()
        '[0, 400]'
        """
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "+inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        return f"{left}{low}, {high}{right}"

    def admits(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        high = self.high
        return high is None or not (value > high or (self.high_open and value == high))


# The physics of a road vehicle's telematics reading.
TELEMETRY_BOUNDS: Mapping[str, Bound] = {
    "speed_kph": Bound(0, 400),
    "engine_temp_c": Bound(0, None, low_open=True),
    "lat": Bound(-90, 90),
    "lon": Bound(-180, 180),
}


def bound_violation(row: Mapping[str, Any], bounds: Mapping[str, Bound]) -> str | None:
    """Why ``row`` breaks ``bounds``, or None when it keeps them all.

    >>> bound_violation({"speed_kph": 512.0}, {"speed_kph": Bound(0, 400)})
    'speed_kph=512 is outside [0, 400]'
    >>> bound_violation({"speed_kph": float("nan")}, {"speed_kph": Bound(0, 400)})
    'speed_kph=nan is not a finite number'
    """
    for field, bound in bounds.items():
        value = row.get(field)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{field} is {type(value).__name__}, expected a number"
        if not math.isfinite(value):
            return f"{field}={value} is not a finite number"
        if not bound.admits(value):
            return f"{field}={value:g} is outside {bound.describe()}"
    return None


class _CheckBoundsDoFn(RowWise):
    def __init__(self, bounds: Mapping[str, Bound], stage: str) -> None:
        self._bounds, self._stage = dict(bounds), stage

    def one(self, row: dict[str, Any]) -> Any:
        problem = bound_violation(row, self._bounds)
        if problem is None:
            return row
        letter = row_dead_letter(row, stage=self._stage, error_type="OutOfRange", message=problem)
        return TaggedOutput(DEAD_LETTER_TAG, letter)


class CheckBounds(beam.PTransform):
    """Splits rows into those whose fields keep their bounds and dead letters.

    A missing field, a non-number, NaN or infinity all break a bound.

    Args:
        bounds: field → allowed :class:`Bound`; :data:`TELEMETRY_BOUNDS` by default.
        stage: the stage name recorded in dead letters.

    Returns:
        ``(rows, dead_letters)``; dead letters have reason ``OutOfRange`` and a message
        naming the field, its value and the allowed interval.

    Raises:
        ConfigError: no bounds at all.

    Example:
        >>> import apache_beam as beam
        >>> rows = [{"speed_kph": 88.0, "engine_temp_c": 90.0, "lat": 52.5, "lon": 13.4},
        ...         {"speed_kph": -3.0, "engine_temp_c": 90.0, "lat": 52.5, "lon": 13.4,
        ...          "_record_id": "r", "_source": "file", "_stream": "s",
        ...          "_partition": "0", "_position": "2", "_event_time_ms": 0}]
        >>> with beam.Pipeline() as p:
        ...     good, dead = p | beam.Create(rows) | CheckBounds()
        ...     _ = dead | beam.Map(lambda d: print(d.error_type, d.message))
        OutOfRange speed_kph=-3 is outside [0, 400]
    """

    def __init__(self, bounds: Mapping[str, Bound] = TELEMETRY_BOUNDS, *, stage: str = "physics"):
        super().__init__()
        if not bounds:
            raise ConfigError("bounds", "expected at least one field → Bound")
        self._bounds, self._stage = dict(bounds), stage

    def expand(self, rows: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        dofn = _CheckBoundsDoFn(self._bounds, self._stage)
        check = same_face(beam.ParDo(dofn), rows)
        return rows | "Check" >> check.with_outputs(DEAD_LETTER_TAG, main="rows")

    def display_data(self) -> dict[str, Any]:
        return {field: bound.describe() for field, bound in self._bounds.items()}
