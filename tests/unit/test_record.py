import apache_beam as beam

from transforms.deadletter import DeadLetter, dead_letter
from transforms.record import Record, make_record, make_record_id


def _record(**overrides):
    args = dict(
        source="kafka",
        stream="tweets",
        partition=2,
        position=41,
        value=b"\x00\xffx",
        key=b"k",
        headers=[("h", b"v"), ("none", None)],
        event_time_ms=1_700_000_000_123,
    )
    args.update(overrides)
    return make_record(**args)


def test_record_id_depends_on_coordinates_only():
    assert _record().record_id == _record(value=b"other").record_id
    assert _record().record_id != _record(position=42).record_id
    assert _record().record_id != _record(stream="t2").record_id
    assert make_record_id("kafka", "a", "1", "2") != make_record_id("kafka", "a", "12", "")


def test_record_coder_is_a_deterministic_row_coder_that_round_trips():
    coder = beam.coders.registry.get_coder(Record)
    assert isinstance(coder, beam.coders.RowCoder)
    assert coder.is_deterministic()
    record = _record()
    encoded = coder.encode(record)
    assert coder.encode(_record()) == encoded
    assert coder.decode(encoded) == record
    assert len(encoded) < 150  # compact: no pickled class names


def test_null_value_and_no_headers_round_trip():
    coder = beam.coders.registry.get_coder(Record)
    record = _record(value=None, key=None, headers=[])
    assert coder.decode(coder.encode(record)) == record


def test_dead_letter_coder_round_trips_with_the_original_bytes():
    coder = beam.coders.registry.get_coder(DeadLetter)
    letter = dead_letter(
        _record(),
        stage="decode",
        error_type="NotUtf8",
        message="x" * 5000,
        schema_subject="tweet",
        schema_id=7,
    )
    back = coder.decode(coder.encode(letter))
    assert back == letter
    assert back.record.value == b"\x00\xffx"
    assert len(back.message) == 1000
