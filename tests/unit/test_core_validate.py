"""What a dead letter of the decode step tells its reader, beyond its reason.

``tests/unit/test_decode_validate.py`` checks each fault's ``error_type``; here:

* the message of each kind of rejection, as the dead-letter table shows it;
* a decoded value that is not an object or record (a schema that allows any JSON);
* reserved field names, named in the message;
* the schema id carried by a ``SubjectMismatch``;
* several unreadable header names in one record;
* a codec that fails with something other than a decode error (the last line of
  defence: bad bytes never crash the pipeline);
* the smallest ``max_record_bytes``;
* records in batches: the same rows, dead letters and counters as one by one.
"""

import json
import re

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from hypothesis import given
from hypothesis import strategies as st

import transforms.validate as validate
from schemas.codecs import encode_framed
from schemas.registry import LocalFileRegistry
from schemas.wire import frame
from tests.helpers import collect
from transforms.batches import PackBatches, Unbatch
from transforms.record import (
    COORDINATE_FIELDS,
    ORIGINAL_FIELDS,
    UNREADABLE_HEADER_PREFIX,
    make_record,
)
from transforms.validate import DecodeAndValidate, RecordDecoder, Rejected

REGISTRY = LocalFileRegistry()
TWEET = REGISTRY.latest("tweet")
V1 = REGISTRY.get("vehicle_telemetry", 1)
READING = {
    "vehicle_id": "veh-1",
    "ts": 1_700_000_000_000,
    "speed_kph": 42.5,
    "engine_temp_c": 88.0,
    "lat": 52.5,
    "lon": 13.4,
}
GOOD_V1 = encode_framed(V1, READING)


def _rejection(decoder, value):
    with pytest.raises(Rejected) as caught:
        decoder.decode(value)
    return caught.value


@pytest.fixture(scope="module")
def any_json(tmp_path_factory):
    """A registry whose JSON subject ``any`` accepts every JSON value (schema ``{}``)."""
    root = tmp_path_factory.mktemp("registry")
    (root / "any").mkdir()
    (root / "any" / "1.json").write_text("{}")
    registry = LocalFileRegistry(root)
    return RecordDecoder(registry, registry.get("any", 1))


_INT64 = st.integers(-(2**63), 2**63 - 1)
_NOT_OBJECTS = st.recursive(
    st.none() | st.booleans() | _INT64 | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=5,
).filter(lambda value: not isinstance(value, dict))


@given(_NOT_OBJECTS)
def test_a_value_that_is_not_an_object_is_a_schema_violation_naming_its_type(any_json, value):
    rejected = _rejection(any_json, json.dumps(value).encode())
    assert rejected.reason == "SchemaViolation"
    assert str(rejected) == f"the value is a {type(value).__name__}, not an object/record"


_RESERVED = sorted(COORDINATE_FIELDS + ORIGINAL_FIELDS)


@given(st.sets(st.sampled_from(_RESERVED), min_size=1), st.sets(st.sampled_from("abc")))
def test_reserved_field_names_are_a_dead_letter_naming_each_of_them(any_json, reserved, other):
    value = dict.fromkeys(sorted(reserved | other), 1)
    rejected = _rejection(any_json, json.dumps(value).encode())
    assert rejected.reason == "ReservedField"
    assert str(rejected) == f"the value uses reserved field names {sorted(reserved)}"


@given(st.dictionaries(st.text(max_size=8).filter(lambda k: k not in _RESERVED), _INT64))
def test_an_object_without_reserved_names_decodes_as_it_is(any_json, value):
    assert any_json.decode(json.dumps(value).encode()) == value


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        (None, "NullValue", "the message has no value (null / tombstone)"),
        (b"", "EmptyValue", "the message value is empty"),
        (GOOD_V1[:3], "TruncatedPayload", "the value has 3 bytes, shorter than the 5-byte header"),
        (GOOD_V1[:5], "TruncatedPayload", "the value has a header but no payload"),
        (
            frame(TWEET.schema_id, b"{}"),
            "SubjectMismatch",
            f"schema id {TWEET.schema_id} belongs to ['tweet'], not 'vehicle_telemetry'",
        ),
    ],
    ids=["null", "empty", "short header", "header only", "other subject"],
)
def test_each_rejection_says_what_is_wrong(value, reason, message):
    rejected = _rejection(RecordDecoder(REGISTRY, V1), value)
    assert (rejected.reason, str(rejected)) == (reason, message)


def test_a_subject_mismatch_carries_the_schema_id_the_frame_named():
    rejected = _rejection(RecordDecoder(REGISTRY, TWEET), GOOD_V1)
    assert (rejected.reason, rejected.schema_id) == ("SubjectMismatch", V1.schema_id)
    assert str(rejected) == (
        f"schema id {V1.schema_id} belongs to ['vehicle_telemetry'], not 'tweet'"
    )


def test_an_unknown_schema_id_is_named_again_while_it_is_remembered_as_unknown():
    decoder = RecordDecoder(REGISTRY, V1)
    value = frame(0x7FFFFFFE, GOOD_V1[5:])
    for _ in range(3):  # the first asks the registry, the others remember the answer
        rejected = _rejection(decoder, value)
        assert rejected.reason == "UnknownSchemaId"
        assert str(rejected) == "the registry has no schema id 2147483646"
        assert rejected.schema_id == 0x7FFFFFFE  # dead letters of every one carry the id


class _Crashing:
    def decode(self, payload):
        raise RuntimeError(f"codec bug on {bytes(payload)!r}")


def test_a_codec_that_crashes_makes_a_corrupt_payload_naming_the_error(monkeypatch):
    monkeypatch.setattr(validate, "codec_for", lambda writer, reader: _Crashing())
    rejected = _rejection(RecordDecoder(REGISTRY, V1), frame(V1.schema_id, b"xy"))
    assert (rejected.reason, rejected.schema_id) == ("CorruptPayload", V1.schema_id)
    assert str(rejected) == "decoding failed: RuntimeError: codec bug on b'xy'"


def test_a_codec_crash_is_a_dead_letter_not_a_failed_pipeline(monkeypatch):
    monkeypatch.setattr(validate, "codec_for", lambda writer, reader: _Crashing())
    records = [
        make_record(
            source="kafka", stream="t", partition=0, position=0, value=GOOD_V1, event_time_ms=0
        )
    ]
    rows, dead = collect(
        lambda p: (
            p | beam.Create(records) | DecodeAndValidate(REGISTRY, subject="vehicle_telemetry")
        )
    )
    assert rows == []
    assert [(d.error_type, d.schema_id) for d in dead] == [("CorruptPayload", V1.schema_id)]
    assert re.fullmatch(r"decoding failed: RuntimeError: codec bug on b'.*'", dead[0].message)


def test_every_unreadable_header_name_is_named_in_the_dead_letter():
    record = make_record(
        source="kafka",
        stream="t",
        partition=0,
        position=0,
        value=GOOD_V1,
        event_time_ms=0,
        headers=[
            (UNREADABLE_HEADER_PREFIX + "ff00", b"v"),
            ("ok", b"1"),
            (UNREADABLE_HEADER_PREFIX + "fe01", b"w"),
        ],
    )
    rows, dead = collect(
        lambda p: (
            p | beam.Create([record]) | DecodeAndValidate(REGISTRY, subject="vehicle_telemetry")
        )
    )
    assert rows == []
    assert [(d.error_type, d.message) for d in dead] == [
        (
            "UnreadableHeaders",
            "header names that are not UTF-8 (hex): ff00, fe01; "
            f"kept as {UNREADABLE_HEADER_PREFIX}<hex>",
        )
    ]


def test_a_limit_of_one_byte_is_allowed_and_lets_nothing_through():
    transform = DecodeAndValidate(REGISTRY, subject="vehicle_telemetry", max_record_bytes=1)
    assert transform.display_data()["max_record_bytes"] == 1
    records = [
        make_record(
            source="kafka", stream="t", partition=0, position=0, value=GOOD_V1, event_time_ms=0
        )
    ]
    rows, dead = collect(lambda p: p | beam.Create(records) | transform)
    assert rows == [] and [d.error_type for d in dead] == ["RecordTooLarge"]


_DECODED: dict[str, list] = {}


class _Keep(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, element):
        _DECODED.setdefault(self._key, []).append(element)


def _decode_all(values, batch_size):
    """Rows, dead letters and decode counters of DecodeAndValidate over ``values``, fed one
    by one (``batch_size`` None) or in batches."""
    _DECODED.clear()
    records = [
        make_record(source="kafka", stream="t", partition=0, position=n, value=v, event_time_ms=n)
        for n, v in enumerate(values)
    ]
    pipeline = beam.Pipeline(runner=FnApiRunner())
    elements = pipeline | beam.Create(records)
    if batch_size is not None:
        elements = elements | PackBatches(max_size=batch_size)
    rows, dead = elements | DecodeAndValidate(REGISTRY, subject="vehicle_telemetry")
    _ = rows | "Rows" >> Unbatch() | "KeepRows" >> beam.ParDo(_Keep("rows"))
    _ = dead | "KeepDead" >> beam.ParDo(_Keep("dead"))
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace("dataplane.decode"))
    counters = {c.key.metric.name: c.committed for c in query["counters"]}
    rows = sorted((r["_position"], r["vehicle_id"]) for r in _DECODED.get("rows", []))
    dead = sorted((d.record.position, d.error_type) for d in _DECODED.get("dead", []))
    return rows, dead, counters


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_batches_decode_to_the_same_rows_dead_letters_and_counters(batch_size):
    values = [GOOD_V1, b"", GOOD_V1, GOOD_V1[:3], b"\x07x", GOOD_V1]
    one_by_one = _decode_all(values, None)
    assert one_by_one[2] == {
        "decoded": 3,
        "dead_letters": 3,
        "dead_letters.EmptyValue": 1,
        "dead_letters.TruncatedPayload": 1,
        "dead_letters.BadMagicByte": 1,
    }
    assert _decode_all(values, batch_size) == one_by_one


def test_a_batch_of_dead_letters_only_gives_no_rows():
    rows, dead, counters = _decode_all([b"", b"\x07x"], 10)
    assert rows == [] and [reason for _, reason in dead] == ["EmptyValue", "BadMagicByte"]
    assert "decoded" not in counters or counters["decoded"] == 0
