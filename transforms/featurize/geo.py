"""Geohash: a zone id for each row's coordinates (pygeohash)."""

from __future__ import annotations

import math
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from schemas.errors import ConfigError
from transforms.batches import RowWise, same_face
from transforms.deadletter import DEAD_LETTER_TAG, row_dead_letter

__all__ = ["Geohash", "geohash"]

MAX_PRECISION = 12


def geohash(lat: float, lon: float, precision: int) -> str:
    """The geohash of a WGS84 point; ValueError for coordinates off the globe.

    >>> geohash(52.5200, 13.4050, 6)
    'u33dc0'
    >>> geohash(95.0, 13.4, 6)
    Traceback (most recent call last):
    ValueError: lat=95 is outside [-90, 90]
    """
    import pygeohash

    for name, value, limit in (("lat", lat, 90.0), ("lon", lon, 180.0)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} is {type(value).__name__}, expected a number")
        if not math.isfinite(value) or abs(value) > limit:
            raise ValueError(f"{name}={value:g} is outside [-{limit:g}, {limit:g}]")
    return str(pygeohash.encode(lat, lon, precision=precision))


class _GeohashDoFn(RowWise):
    def __init__(self, lat: str, lon: str, precision: int, output_field: str) -> None:
        self._lat, self._lon = lat, lon
        self._precision, self._output_field = precision, output_field

    def one(self, row: dict[str, Any]) -> Any:
        try:
            zone = geohash(row.get(self._lat), row.get(self._lon), self._precision)  # type: ignore[arg-type]
        except ValueError as err:
            letter = row_dead_letter(
                row, stage="geohash", error_type="InvalidCoordinates", message=str(err)
            )
            return TaggedOutput(DEAD_LETTER_TAG, letter)
        return {**row, self._output_field: zone}


class Geohash(beam.PTransform):
    """Adds the geohash zone of each row's latitude/longitude.

    Precision 5 is a cell of about 4.9 by 4.9 km, 6 about 1.2 by 0.6 km,
    7 about 153 by 153 m.

    Args:
        precision: geohash characters, 1..12.
        lat_field: the latitude field (degrees).
        lon_field: the longitude field (degrees).
        output_field: where the zone goes.

    Returns:
        ``(rows, dead_letters)``; rows with missing or impossible coordinates are dead
        letters with reason ``InvalidCoordinates``.

    Raises:
        ConfigError: a precision outside 1..12.

    Example:
        >>> import apache_beam as beam
        >>> with beam.Pipeline() as p:
        ...     rows, dead = p | beam.Create([{"lat": 52.52, "lon": 13.405}]) | Geohash(5)
        ...     _ = rows | beam.Map(lambda r: print(r["geohash"]))
        u33dc
    """

    def __init__(
        self,
        precision: int = 6,
        *,
        lat_field: str = "lat",
        lon_field: str = "lon",
        output_field: str = "geohash",
    ) -> None:
        super().__init__()
        if isinstance(precision, bool) or not 1 <= precision <= MAX_PRECISION:
            raise ConfigError("precision", f"expected 1..{MAX_PRECISION}, got {precision!r}")
        self._precision, self._lat, self._lon = precision, lat_field, lon_field
        self._output_field = output_field

    def expand(self, rows: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        dofn = _GeohashDoFn(self._lat, self._lon, self._precision, self._output_field)
        encode = same_face(beam.ParDo(dofn), rows)
        return rows | "Encode" >> encode.with_outputs(DEAD_LETTER_TAG, main="rows")

    def display_data(self) -> dict[str, Any]:
        return {"precision": self._precision, "lat_field": self._lat, "lon_field": self._lon}
