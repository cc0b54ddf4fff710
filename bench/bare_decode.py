"""The bare libraries' decode loops (fastavro, json + fastjsonschema), without our code or Beam.

What ``DecodeAndValidate`` is measured against: strip the 5-byte Confluent header, then
``fastavro.schemaless_reader`` with writer and reader schema, or ``json.loads`` and a
compiled fastjsonschema validator.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

import fastavro
import fastjsonschema

from schemas.registry import LocalFileRegistry

__all__ = ["bare_avro", "bare_json"]

REGISTRY = LocalFileRegistry()


def bare_avro(values: Sequence[bytes]) -> int:
    reader = fastavro.parse_schema(REGISTRY.latest("vehicle_telemetry").schema, named_schemas={})
    writers = {
        s.schema_id: fastavro.parse_schema(s.schema, named_schemas={})
        for s in REGISTRY.history("vehicle_telemetry")
    }
    for value in values:
        schema_id = int.from_bytes(value[1:5], "big")
        fastavro.schemaless_reader(io.BytesIO(value[5:]), writers[schema_id], reader)
    return len(values)


def bare_json(values: Sequence[bytes]) -> int:
    validate = fastjsonschema.compile(REGISTRY.latest("tweet").schema)
    for value in values:
        validate(json.loads(value[5:].decode("utf-8")))
    return len(values)
