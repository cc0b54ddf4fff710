"""Property-based fuzzing of the decoder: no input bytes may raise out of the transform."""

import json
from datetime import datetime, timedelta, timezone

from apache_beam.pvalue import TaggedOutput
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codecs import encode_framed
from schemas.registry import LocalFileRegistry
from schemas.wire import frame
from transforms.deadletter import DEAD_LETTER_TAG, DeadLetter
from transforms.record import make_record
from transforms.validate import RecordDecoder, Rejected, _DecodeDoFn

REGISTRY = LocalFileRegistry()
TWEET = REGISTRY.latest("tweet")
V1 = REGISTRY.get("vehicle_telemetry", 1)
V2 = REGISTRY.get("vehicle_telemetry", 2)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

readings = st.fixed_dictionaries(
    {
        "vehicle_id": st.text(max_size=40),
        "ts": st.integers(min_value=0, max_value=4_102_444_800_000),
        "speed_kph": st.floats(allow_nan=False),
        "engine_temp_c": st.floats(allow_nan=False),
        "lat": st.floats(allow_nan=False),
        "lon": st.floats(allow_nan=False),
    }
)
json_documents = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
frames = st.sampled_from([V1, V2, TWEET]).map(lambda s: s.schema_id) | st.integers(0, 2**32 - 1)


def _process(dofn, value):
    record = make_record(
        source="kafka", stream="t", partition=0, position=0, value=value, event_time_ms=0
    )
    return list(dofn.process(record))


def _dofn(reader):
    dofn = _DecodeDoFn(REGISTRY, reader, "auto")
    dofn.setup()
    return dofn


AVRO_DOFN, JSON_DOFN = _dofn(V2), _dofn(TWEET)


def _assert_row_or_dead_letter(outputs):
    assert len(outputs) == 1
    (out,) = outputs
    if isinstance(out, TaggedOutput):
        assert out.tag == DEAD_LETTER_TAG
        assert isinstance(out.value, DeadLetter) and out.value.error_type
    else:
        assert isinstance(out, dict) and "_record_id" in out


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_out_of_the_avro_transform(value):
    _assert_row_or_dead_letter(_process(AVRO_DOFN, value))


@FUZZ
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_out_of_the_json_transform(value):
    _assert_row_or_dead_letter(_process(JSON_DOFN, value))


@FUZZ
@given(frames, st.binary(max_size=120))
def test_arbitrary_payloads_behind_a_valid_looking_frame_never_raise(schema_id, payload):
    _assert_row_or_dead_letter(_process(AVRO_DOFN, frame(schema_id, payload)))
    _assert_row_or_dead_letter(_process(JSON_DOFN, frame(schema_id, payload)))


@FUZZ
@given(readings, st.data())
def test_mutated_avro_frames_are_rows_or_dead_letters(reading, data):
    good = bytearray(encode_framed(V1, reading))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(good) - 1))
        good[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(good)))
    _assert_row_or_dead_letter(_process(AVRO_DOFN, bytes(good[:cut])))


@FUZZ
@given(readings)
def test_valid_readings_round_trip_through_the_reader_schema(reading):
    decoded = RecordDecoder(REGISTRY, V2).decode(encode_framed(V1, reading))
    assert decoded["fuel_level_pct"] is None
    assert decoded["vehicle_id"] == reading["vehicle_id"]
    assert decoded["ts"] == EPOCH + timedelta(milliseconds=reading["ts"])
    for name in ("speed_kph", "engine_temp_c", "lat", "lon"):
        assert decoded[name] == reading[name]


@FUZZ
@given(json_documents)
def test_arbitrary_json_documents_are_rows_or_dead_letters(document):
    value = json.dumps(document).encode()
    try:
        row = RecordDecoder(REGISTRY, TWEET).decode(value)
    except Rejected as err:
        if _has_integer_beyond_64_bits(document):
            assert err.reason == "Unrepresentable"
        else:
            assert err.reason in {"SchemaViolation", "ReservedField"}
    else:
        assert isinstance(row, dict) and {"id", "text", "created_at", "user"} <= set(row)


def _has_integer_beyond_64_bits(document) -> bool:
    if isinstance(document, bool):
        return False
    if isinstance(document, int):
        return not -(2**63) <= document < 2**63
    if isinstance(document, list):
        return any(_has_integer_beyond_64_bits(item) for item in document)
    if isinstance(document, dict):
        return any(_has_integer_beyond_64_bits(item) for item in document.values())
    return False


@FUZZ
@given(
    st.integers(1, 64),
    st.binary(max_size=80),
    st.none() | st.binary(max_size=16),
    st.lists(st.tuples(st.text(max_size=4), st.none() | st.binary(max_size=8)), max_size=3),
)
def test_records_over_max_record_bytes_are_dead_letters_before_decoding(limit, value, key, headers):
    dofn = _DecodeDoFn(REGISTRY, TWEET, "auto", max_record_bytes=limit)
    dofn.setup()
    record = make_record(
        source="kafka",
        stream="t",
        partition=0,
        position=0,
        value=value,
        event_time_ms=0,
        key=key,
        headers=headers,
    )
    (out,) = dofn.process(record)
    size = len(value) + len(key or b"") + sum(len(n.encode()) + len(v or b"") for n, v in headers)
    too_large = isinstance(out, TaggedOutput) and out.value.error_type == "RecordTooLarge"
    assert too_large == (size > limit)
    if too_large:
        assert out.value.record == record  # kept whole
