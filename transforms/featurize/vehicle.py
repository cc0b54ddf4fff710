"""SpeedStats: the per-window aggregate of vehicle telemetry readings."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

__all__ = ["SpeedStats"]

# count, speed sum, speed min, speed max, engine temperature sum,
# (event time, record id, zone) of the latest reading.
_Accumulator = list[Any]
_NO_READING = (-(2**62), "", None)


class SpeedStats(beam.CombineFn):
    """Count, mean/min/max speed, mean engine temperature and the zone of the last reading.

    Rows need ``speed_kph``, ``engine_temp_c``, ``_event_time_ms`` (or ``ts_ms``) and a
    zone field. The last reading is the one with the latest event time; equal times
    are broken by ``_record_id`` so that the result never depends on arrival order.

    Example:
        >>> stats = SpeedStats()
        >>> acc = stats.create_accumulator()
        >>> for speed, t in [(40.0, 2), (60.0, 1)]:
        ...     acc = stats.add_input(acc, {"speed_kph": speed, "engine_temp_c": 90.0,
        ...                                 "_event_time_ms": t, "geohash": f"z{t}"})
        >>> out = stats.extract_output(acc)
        >>> out["avg_speed_kph"], out["max_speed_kph"], out["last_zone"]
        (50.0, 60.0, 'z2')
    """

    def __init__(self, zone_field: str = "geohash") -> None:
        super().__init__()
        self._zone_field = zone_field

    def create_accumulator(self) -> _Accumulator:
        return [0, 0.0, float("inf"), float("-inf"), 0.0, _NO_READING]

    def add_input(self, acc: _Accumulator, row: dict[str, Any]) -> _Accumulator:
        speed = float(row["speed_kph"])
        acc[0] += 1
        acc[1] += speed
        acc[2] = min(acc[2], speed)
        acc[3] = max(acc[3], speed)
        acc[4] += float(row["engine_temp_c"])
        ts = row.get("_event_time_ms", row.get("ts_ms", 0))
        latest = (ts, row.get("_record_id", ""), row.get(self._zone_field))
        if latest[:2] > acc[5][:2]:
            acc[5] = latest
        return acc

    def merge_accumulators(self, accumulators: Any) -> _Accumulator:
        merged = self.create_accumulator()
        for acc in accumulators:
            merged[0] += acc[0]
            merged[1] += acc[1]
            merged[2] = min(merged[2], acc[2])
            merged[3] = max(merged[3], acc[3])
            merged[4] += acc[4]
            merged[5] = max(merged[5], acc[5], key=lambda latest: latest[:2])
        return merged

    def extract_output(self, acc: _Accumulator) -> dict[str, Any]:
        count = acc[0]
        if count == 0:
            return {
                "count": 0,
                "avg_speed_kph": None,
                "min_speed_kph": None,
                "max_speed_kph": None,
                "avg_engine_temp_c": None,
                "last_zone": None,
                "last_reading_ms": None,
            }
        return {
            "count": count,
            "avg_speed_kph": acc[1] / count,
            "min_speed_kph": acc[2],
            "max_speed_kph": acc[3],
            "avg_engine_temp_c": acc[4] / count,
            "last_zone": acc[5][2],
            "last_reading_ms": acc[5][0],
        }
