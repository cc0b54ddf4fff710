"""Payload codecs: every reason at its boundary, and round trips of valid values."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import RegisteredSchema
from schemas.codecs import AvroCodec, DecodeError, JsonCodec, codec_for, encode_framed
from schemas.wire import unframe

ANY = JsonCodec({})


def _reason(codec, payload):
    with pytest.raises(DecodeError) as caught:
        codec.decode(payload)
    return caught.value.reason, str(caught.value)


# -- JSON: what no column can hold ------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "value"),
    [
        (b"9223372036854775807", 2**63 - 1),
        (b"-9223372036854775808", -(2**63)),
        (b"1.7976931348623157e308", 1.7976931348623157e308),
        (b"-1.7976931348623157e308", -1.7976931348623157e308),
        (b'{"a": "\\ud83d\\ude00"}', {"a": "\U0001f600"}),  # a surrogate pair is one character
    ],
)
def test_json_at_the_edge_of_what_columns_hold_decodes(payload, value):
    assert ANY.decode(payload) == value


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"9223372036854775808", "the integer 9223372036854775808 does not fit in 64 bits"),
        (b"-9223372036854775809", "the integer -9223372036854775809 does not fit in 64 bits"),
        (b"1e309", "the number 1e309 is too large for a 64-bit float"),
        (b"-1e309", "the number -1e309 is too large for a 64-bit float"),
        (b'"\\ud800"', "lone surrogate escape, which UTF-8 cannot encode (at the top level)"),
        (b'{"a": [1, "\\udc00x"]}', "(at a[1])"),
        (b'{"a": {"b": "\\uDBFF"}}', "(at a.b)"),
        (b'{"k\\ud800": 1}', "(at k\\ud800 (the name))"),
    ],
)
def test_json_no_column_holds_is_unrepresentable(payload, message):
    reason, text = _reason(ANY, payload)
    assert reason == "Unrepresentable"
    assert message in text


def test_long_unrepresentable_literals_are_cut_in_the_message():
    reason, text = _reason(ANY, b"9" * 100)
    assert reason == "Unrepresentable" and "9" * 40 + " does not" in text and "9" * 41 not in text
    reason, text = _reason(ANY, b"1" * 400 + b".5")
    assert text == f"the number {'1' * 40} is too large for a 64-bit float"


def test_a_remote_ref_is_named_cut_to_200_characters():
    uri = "http://127.0.0.1:9/" + "a" * 300
    with pytest.raises(Exception, match="not followed") as caught:
        JsonCodec({"properties": {"a": {"$ref": uri}}})
    assert str(caught.value).endswith(f"$ref to another document is not followed: {uri[:200]}")


@pytest.mark.parametrize("payload", [b"NaN", b"Infinity", b"-Infinity", b"[1, NaN]"])
def test_json_constants_python_accepts_are_invalid_json(payload):
    reason, text = _reason(ANY, payload)
    assert reason == "InvalidJson" and "is not valid JSON" in text


def test_not_utf8_and_invalid_json_reasons():
    reason, text = _reason(ANY, b'"\xff"')
    assert reason == "NotUtf8" and text.startswith("value is not UTF-8: 'utf-8' codec can't")
    assert _reason(ANY, b"{")[0] == "InvalidJson"
    assert _reason(ANY, memoryview(b"[" * 100_000))[0] == "InvalidJson"


# -- JSON Schema validation ----------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "required": ["a"],
    "properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}},
}


def test_violations_name_the_path_or_the_top_level():
    codec = JsonCodec(SCHEMA)
    assert _reason(codec, b'{"a": {"b": "x"}}') == (
        "SchemaViolation",
        "data.a.b must be integer (at a.b)",
    )
    assert _reason(codec, b"{}") == (
        "SchemaViolation",
        "data must contain ['a'] properties (at the top level)",
    )


def test_a_value_must_satisfy_every_schema_given():
    codec = JsonCodec(SCHEMA, also=({"properties": {"c": {"type": "string"}}},))
    assert codec.decode(b'{"a": {}, "c": "x"}') == {"a": {}, "c": "x"}
    assert _reason(codec, b'{"a": {}, "c": 1}') == (
        "SchemaViolation",
        "data.c must be string (at c)",
    )


def test_encode_is_compact_utf8_and_validated():
    codec = JsonCodec(SCHEMA)
    assert codec.encode({"a": {"b": 1}, "t": "é"}) == '{"a":{"b":1},"t":"é"}'.encode()
    with pytest.raises(ValueError, match="must be integer"):
        codec.encode({"a": {"b": "x"}})
    with pytest.raises(ValueError, match="must contain"):
        JsonCodec({}, also=(SCHEMA,)).encode({})


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(_JSON)
def test_any_representable_json_value_round_trips(value):
    assert ANY.decode(ANY.encode(value)) == value


# -- Avro ----------------------------------------------------------------------------------------

V1 = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]}
V2 = {
    "type": "record",
    "name": "R",
    "fields": [{"name": "a", "type": "long"}, {"name": "b", "type": "string", "default": "-"}],
}
STRINGY = {"type": "record", "name": "R", "fields": [{"name": "a", "type": "string"}]}
UNION = {"type": "record", "name": "U", "fields": [{"name": "u", "type": ["null", "int"]}]}


def test_avro_decodes_into_the_reader_or_the_writer_schema():
    payload = AvroCodec(V1).encode({"a": 5})
    assert AvroCodec(V1).decode(payload) == {"a": 5}
    assert AvroCodec(V1, reader=V2).decode(memoryview(payload)) == {"a": 5, "b": "-"}


def test_avro_reasons():
    payload = AvroCodec(V2).encode({"a": 1, "b": "xyz"})
    reason, text = _reason(AvroCodec(V2), payload[:-2])
    assert reason == "TruncatedPayload" and text.startswith("the Avro payload ended early: ")
    assert _reason(AvroCodec(V2), payload + b"\x00\x00") == (
        "CorruptPayload",
        "2 bytes left after the Avro record",
    )
    reason, text = _reason(AvroCodec(V1, reader=STRINGY), AvroCodec(V1).encode({"a": 1}))
    assert reason == "IncompatibleSchema" and text.startswith("cannot resolve writer to reader")
    reason, text = _reason(AvroCodec(UNION), b"\x08\x02")  # union branch 4 of 2
    assert reason == "CorruptPayload" and text.startswith("the Avro payload is corrupt")
    assert _reason(AvroCodec(V1), b"")[0] == "TruncatedPayload"


@given(st.integers(-(2**31), 2**31 - 1), st.text(max_size=20))
def test_avro_values_round_trip_and_resolve(a, b):
    payload = AvroCodec(V2).encode({"a": a, "b": b})
    assert AvroCodec(V2).decode(payload) == {"a": a, "b": b}
    assert AvroCodec(V1, reader=V2).decode(AvroCodec(V1).encode({"a": a})) == {"a": a, "b": "-"}


# -- codec_for and framing -----------------------------------------------------------------------


def _registered(version, fmt, schema):
    return RegisteredSchema("s", version, 100 + version, fmt, schema)


def test_codec_for_refuses_a_reader_of_another_format():
    with pytest.raises(ValueError, match="writer s/1 is avro, reader s/2 is json"):
        codec_for(_registered(1, "avro", V1), _registered(2, "json", {}))


def test_codec_for_json_checks_the_reader_schema_too():
    writer = _registered(1, "json", {"type": "object"})
    reader = _registered(2, "json", {"required": ["x"]})
    assert codec_for(writer).decode(b"{}") == {}
    assert codec_for(writer, writer).decode(b"{}") == {}
    assert _reason(codec_for(writer, reader), b"{}")[0] == "SchemaViolation"


def test_codec_for_avro_resolves_to_the_reader():
    payload = AvroCodec(V1).encode({"a": 2})
    assert codec_for(_registered(1, "avro", V1), _registered(2, "avro", V2)).decode(payload) == {
        "a": 2,
        "b": "-",
    }
    assert codec_for(_registered(1, "avro", V1)).decode(payload) == {"a": 2}


def test_encode_framed_frames_the_schema_id_and_payload():
    framed = encode_framed(_registered(1, "json", {}), {"a": 1})
    assert framed == b"\x00\x00\x00\x00\x65" + b'{"a":1}'
    schema_id, payload = unframe(framed)
    assert (schema_id, bytes(payload)) == (101, b'{"a":1}')


def test_a_value_nested_deeper_than_its_schema_can_check_is_a_schema_violation():
    # Definitions that refer to each other: each level of the value is several calls deep
    # in the compiled validator, so it gives up long before the JSON reader does.
    schema = {
        "definitions": {
            "a": {"type": "array", "items": {"$ref": "#/definitions/b"}},
            "b": {"anyOf": [{"$ref": "#/definitions/a"}]},
        },
        "$ref": "#/definitions/a",
    }
    codec = JsonCodec(schema)
    assert codec.decode(b"[[[]]]") == [[[]]]
    assert _reason(codec, b"[" * 900 + b"]" * 900) == (
        "SchemaViolation",
        "the value is nested too deeply",
    )
