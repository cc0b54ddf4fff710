"""Synthetic vehicle telemetry in Avro, Confluent-framed: vehicles driving plausible tracks.

Each vehicle keeps a position, heading and speed that change smoothly; readings
come every ``interval_ms`` per vehicle, written with schema versions taken in
turn (so v1 and v2 messages interleave on one topic). Shares of the messages are
malformed in the framing ways a real topic sees, or well-formed readings that
break physics. Messages are emitted in arrival order: each reading arrives up to
``max_delay_ms`` after it was taken (out of order), and a ``late_ratio`` share
arrives ``late_delay_ms`` later (late data).
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from beam_pipelines.feeds.tweets import (
    FRAMING_BAD_KINDS,
    GeneratedMessage,
    bad_every,
    framing_bad_value,
)
from schemas.base import RegisteredSchema
from schemas.codecs import encode_framed
from schemas.registry import LocalFileRegistry

__all__ = ["AVRO_BAD_KINDS", "PHYSICS_BAD_KINDS", "generate_telemetry"]

# Framing faults plus Avro-level ones, and the dead-letter reason each must produce.
AVRO_BAD_KINDS = {
    **FRAMING_BAD_KINDS,
    "truncated_avro": "TruncatedPayload",
    "trailing_bytes": "CorruptPayload",
    "unframed_json": "BadMagicByte",
}
# Readings that decode but break physics, and the field each one breaks.
PHYSICS_BAD_KINDS = {
    "speed_above_400": ("speed_kph", 512.0),
    "negative_speed": ("speed_kph", -12.5),
    "engine_temp_at_0": ("engine_temp_c", 0.0),
    "lat_out_of_range": ("lat", 91.5),
    "lon_out_of_range": ("lon", -181.0),
    "speed_nan": ("speed_kph", float("nan")),
}
_EARTH_RADIUS_KM = 6371.0
_START = datetime(2026, 11, 1, 8, tzinfo=timezone.utc)


@dataclass
class _Vehicle:
    vehicle_id: str
    lat: float
    lon: float
    heading_deg: float
    speed_kph: float
    engine_temp_c: float
    fuel_pct: float

    def advance(self, rng: random.Random, seconds: float) -> None:
        self.heading_deg = (self.heading_deg + rng.gauss(0, 8)) % 360
        target = rng.choice((30.0, 50.0, 80.0, 110.0))
        self.speed_kph = max(0.0, min(180.0, self.speed_kph + (target - self.speed_kph) * 0.1))
        distance_km = self.speed_kph * seconds / 3600
        heading = math.radians(self.heading_deg)
        self.lat += math.degrees(distance_km * math.cos(heading) / _EARTH_RADIUS_KM)
        self.lat = max(-85.0, min(85.0, self.lat))
        scale = max(math.cos(math.radians(self.lat)), 0.01)
        self.lon += math.degrees(distance_km * math.sin(heading) / (_EARTH_RADIUS_KM * scale))
        self.lon = (self.lon + 180.0) % 360.0 - 180.0
        self.engine_temp_c += (88.0 + self.speed_kph / 20 - self.engine_temp_c) * 0.05
        self.fuel_pct = max(0.0, self.fuel_pct - distance_km * 0.01)

    def reading(self, ts_ms: int) -> dict[str, Any]:
        return {
            "vehicle_id": self.vehicle_id,
            "ts": ts_ms,
            "speed_kph": round(self.speed_kph, 2),
            "engine_temp_c": round(self.engine_temp_c, 2),
            "lat": round(self.lat, 6),
            "lon": round(self.lon, 6),
            "fuel_level_pct": round(self.fuel_pct, 2),
        }


def _fleet(rng: random.Random, vehicles: int) -> list[_Vehicle]:
    return [
        _Vehicle(
            vehicle_id=f"veh-{n:04d}",
            lat=52.52 + rng.uniform(-0.2, 0.2),
            lon=13.40 + rng.uniform(-0.3, 0.3),
            heading_deg=rng.uniform(0, 360),
            speed_kph=rng.uniform(0, 60),
            engine_temp_c=rng.uniform(20, 90),
            fuel_pct=rng.uniform(30, 100),
        )
        for n in range(vehicles)
    ]


def _encode(schema: RegisteredSchema, reading: dict[str, Any]) -> bytes:
    names = {f["name"] for f in schema.schema["fields"]}
    return encode_framed(schema, {k: v for k, v in reading.items() if k in names})


def _bad(kind: str, good: bytes, other: RegisteredSchema, reading: dict[str, Any]) -> bytes:
    if kind in FRAMING_BAD_KINDS:
        return framing_bad_value(kind, good, other)
    if kind == "truncated_avro":
        return good[:-4]
    if kind == "trailing_bytes":
        return good + b"\x00\x00"
    if kind == "unframed_json":
        return json.dumps(reading).encode()
    raise ValueError(f"unknown bad kind {kind!r}")


def generate_telemetry(
    count: int,
    *,
    vehicles: int = 20,
    versions: Sequence[int] = (1, 2),
    bad_ratio: float = 0.0,
    physics_bad_ratio: float = 0.0,
    max_delay_ms: int = 0,
    late_ratio: float = 0.0,
    late_delay_ms: int = 900_000,
    interval_ms: int = 1000,
    seed: int = 11,
    registry: LocalFileRegistry | None = None,
) -> Iterator[GeneratedMessage]:
    """``count`` framed readings keyed by vehicle id, in arrival order.

    A message's ``timestamp_ms`` is its arrival time; the reading's ``ts`` is when it
    was taken. Its ``kind`` is ``reading``, ``late``, a key of :data:`AVRO_BAD_KINDS`
    or of :data:`PHYSICS_BAD_KINDS`.

    Args:
        count: messages in all.
        vehicles: how many vehicles report, in turn.
        versions: ``vehicle_telemetry`` versions to write with, in turn per message.
        bad_ratio: share of malformed messages (kinds of :data:`AVRO_BAD_KINDS` in turn).
        physics_bad_ratio: share of readings breaking physics (kinds in turn).
        max_delay_ms: readings arrive up to this long after they were taken.
        late_ratio: share of readings that arrive ``late_delay_ms`` late instead.
        late_delay_ms: the delay of late readings.
        interval_ms: time between two readings of one vehicle.
        seed: the random seed; equal seeds give equal messages.
        registry: where the schemas come from (the packaged ones by default).

    >>> from schemas.registry import LocalFileRegistry
    >>> from transforms.validate import RecordDecoder
    >>> registry = LocalFileRegistry()
    >>> decoder = RecordDecoder(registry, registry.latest("vehicle_telemetry"))
    >>> msgs = list(generate_telemetry(4, vehicles=2))
    >>> [(m.key, decoder.decode(m.value)["vehicle_id"]) for m in msgs][:2]
    [(b'veh-0000', 'veh-0000'), (b'veh-0001', 'veh-0001')]
    """
    registry = registry or LocalFileRegistry()
    schemas = [registry.get("vehicle_telemetry", v) for v in versions]
    other = registry.latest("tweet")
    every, physics_every = bad_every(bad_ratio), bad_every(physics_bad_ratio)
    kinds, physics_kinds = list(AVRO_BAD_KINDS), list(PHYSICS_BAD_KINDS)
    rng = random.Random(seed)
    fleet = _fleet(rng, vehicles)
    start_ms = int(_START.timestamp() * 1000)
    longest_delay = max(max_delay_ms, late_delay_ms if late_ratio > 0 else 0)
    pending: list[tuple[int, int, GeneratedMessage]] = []
    for number in range(count):
        vehicle = fleet[number % vehicles]
        vehicle.advance(rng, interval_ms / 1000)
        ts_ms = start_ms + (number // vehicles) * interval_ms + rng.randrange(interval_ms // 4 + 1)
        reading, kind = vehicle.reading(ts_ms), "reading"
        if physics_every and number % physics_every == (physics_every - 1) // 2:
            kind = physics_kinds[(number // physics_every) % len(physics_kinds)]
            field, value = PHYSICS_BAD_KINDS[kind]
            reading[field] = value
        value_bytes = _encode(schemas[number % len(schemas)], reading)
        if every and number % every == every - 1:
            kind = kinds[(number // every) % len(kinds)]
            value_bytes = _bad(kind, value_bytes, other, reading)
        late = late_ratio > 0 and rng.random() < late_ratio
        delay = late_delay_ms if late else rng.randint(0, max_delay_ms)
        kind = "late" if late and kind == "reading" else kind
        message = GeneratedMessage(vehicle.vehicle_id.encode(), value_bytes, ts_ms + delay, kind)
        heapq.heappush(pending, (ts_ms + delay, number, message))
        while pending and pending[0][0] <= ts_ms - longest_delay:
            yield heapq.heappop(pending)[2]
    while pending:
        yield heapq.heappop(pending)[2]
