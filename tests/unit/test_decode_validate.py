import json
from datetime import datetime, timezone

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.base import RegistryUnavailableError
from schemas.codecs import encode_framed
from schemas.confluent import ConfluentRegistry
from schemas.errors import ConfigError
from schemas.registry import LocalFileRegistry, schema_id_for
from schemas.wire import frame
from transforms.record import make_record
from transforms.validate import DecodeAndValidate, RecordDecoder, Rejected

REGISTRY = LocalFileRegistry()
TWEET = REGISTRY.latest("tweet")
V1 = REGISTRY.get("vehicle_telemetry", 1)
V2 = REGISTRY.get("vehicle_telemetry", 2)

GOOD_TWEET = {
    "id": "1",
    "text": "hello",
    "created_at": "2026-11-01T00:00:00.000Z",
    "user": {"id": "u1", "handle": "bob"},
}
READING = {
    "vehicle_id": "veh-1",
    "ts": 1_700_000_000_000,
    "speed_kph": 42.5,
    "engine_temp_c": 88.0,
    "lat": 52.5,
    "lon": 13.4,
}
GOOD_V1 = encode_framed(V1, READING)
GOOD_V2 = encode_framed(V2, {**READING, "fuel_level_pct": 61.0})

# Plain (unframed) JSON values for the tweet subject, and the reason each must give.
PLAIN_CASES = [
    ("null", None, "NullValue"),
    ("empty", b"", "EmptyValue"),
    ("not utf8", b'{"text": "\xff"}', "NotUtf8"),
    ("invalid json", b'{"id": "1", ', "InvalidJson"),
    ("nan", b'{"x": NaN}', "InvalidJson"),
    ("wrong type", json.dumps({**GOOD_TWEET, "text": 5}).encode(), "SchemaViolation"),
    (
        "missing field",
        json.dumps({k: v for k, v in GOOD_TWEET.items() if k != "user"}).encode(),
        "SchemaViolation",
    ),
    ("oversize", json.dumps({**GOOD_TWEET, "text": "x" * 2001}).encode(), "SchemaViolation"),
    ("array", b"[1, 2]", "SchemaViolation"),
    ("reserved", json.dumps({**GOOD_TWEET, "_record_id": "spoof"}).encode(), "ReservedField"),
    ("deep nesting", b"[" * 100_000, "InvalidJson"),
    ("control byte", b"\x05" + json.dumps(GOOD_TWEET).encode(), "BadMagicByte"),
]

# Framed values for the vehicle_telemetry (Avro) subject, and the reason each must give.
FRAMED_CASES = [
    ("bad magic byte", b"\x01" + GOOD_V1[1:], "BadMagicByte"),
    ("short header", GOOD_V1[:3], "TruncatedPayload"),
    ("header only", GOOD_V1[:5], "TruncatedPayload"),
    ("truncated avro", GOOD_V1[:-3], "TruncatedPayload"),
    ("unknown schema id", frame(0x7FFFFFFE, GOOD_V1[5:]), "UnknownSchemaId"),
    ("other subject", encode_framed(TWEET, GOOD_TWEET), "SubjectMismatch"),
    ("trailing bytes", GOOD_V1 + b"\x02", "CorruptPayload"),
    ("plain json", json.dumps(READING).encode(), "BadMagicByte"),
    ("string not utf-8", GOOD_V1.replace(b"veh-1", b"\xff\xfe\xfd\xfc\xfb"), "CorruptPayload"),
]


def _records(values):
    return [
        make_record(
            source="kafka", stream="t", partition=2, position=i, value=v, event_time_ms=1000 + i
        )
        for i, v in enumerate(values)
    ]


def _reason(decoder, value):
    with pytest.raises(Rejected) as caught:
        decoder.decode(value)
    return caught.value.reason


@pytest.mark.parametrize(("name", "value", "reason"), PLAIN_CASES, ids=[c[0] for c in PLAIN_CASES])
def test_plain_json_faults_give_their_reason(name, value, reason):
    assert _reason(RecordDecoder(REGISTRY, TWEET), value) == reason


@pytest.mark.parametrize(
    ("name", "value", "reason"), FRAMED_CASES, ids=[c[0] for c in FRAMED_CASES]
)
def test_framing_and_avro_faults_give_their_reason(name, value, reason):
    assert _reason(RecordDecoder(REGISTRY, V2), value) == reason


def test_v1_and_v2_frames_decode_into_the_reader_version():
    decoder = RecordDecoder(REGISTRY, V2)
    old, new = decoder.decode(GOOD_V1), decoder.decode(GOOD_V2)
    assert old["fuel_level_pct"] is None  # the v2 field's default
    assert new["fuel_level_pct"] == 61.0
    assert old["ts"] == datetime.fromtimestamp(1_700_000_000, tz=timezone.utc)
    assert {k: old[k] for k in READING if k != "ts"} == {
        k: v for k, v in READING.items() if k != "ts"
    }


def test_a_v1_reader_skips_the_field_v2_added():
    assert "fuel_level_pct" not in RecordDecoder(REGISTRY, V1).decode(GOOD_V2)


def test_framed_json_is_validated_against_the_writer_schema():
    decoder = RecordDecoder(REGISTRY, TWEET)
    assert decoder.decode(encode_framed(TWEET, GOOD_TWEET))["text"] == "hello"
    bad = frame(TWEET.schema_id, json.dumps({**GOOD_TWEET, "user": {"id": "u"}}).encode())
    with pytest.raises(
        Rejected, match=r"data.user must contain \['handle'\] properties \(at user\)"
    ):
        decoder.decode(bad)


def test_schema_violation_names_the_failing_path():
    value = json.dumps({**GOOD_TWEET, "user": {"id": "u", "handle": 3}}).encode()
    with pytest.raises(Rejected, match=r"\(at user\.handle\)"):
        RecordDecoder(REGISTRY, TWEET).decode(value)


def test_an_avro_frame_for_a_json_only_decoder_is_a_subject_mismatch():
    # Avro data framed with an Avro id never reaches a JSON decoder's codec.
    assert _reason(RecordDecoder(REGISTRY, TWEET, "json"), GOOD_V1) == "SubjectMismatch"


def test_writer_versions_the_reader_cannot_resolve_are_dead_letters(tmp_path):
    for version, kind in ((1, "string"), (2, "int")):
        (tmp_path / "s").mkdir(exist_ok=True)
        schema = {"type": "record", "name": "S", "fields": [{"name": "a", "type": kind}]}
        (tmp_path / "s" / f"{version}.avsc").write_text(json.dumps(schema))
    registry = LocalFileRegistry(tmp_path)
    value = encode_framed(registry.get("s", 1), {"a": "text"})
    with pytest.raises(Rejected) as caught:
        RecordDecoder(registry, registry.get("s", 2)).decode(value)
    assert caught.value.reason == "IncompatibleSchema"
    assert caught.value.schema_id == registry.get("s", 1).schema_id


def test_an_unreachable_registry_raises_instead_of_dead_lettering():
    unreachable = ConfluentRegistry("http://127.0.0.1:9", {"max.retries": 0, "timeout": 2})
    decoder = RecordDecoder(unreachable, V2)
    with pytest.raises(RegistryUnavailableError, match="unreachable"):
        decoder.decode(GOOD_V1)


def test_transform_routes_every_kind_with_coordinates_and_keeps_raw_bytes():
    values = [GOOD_V1, GOOD_V2] + [value for _, value, _ in FRAMED_CASES]
    with TestPipeline() as p:
        rows, dead = (
            p
            | beam.Create(_records(values))
            | DecodeAndValidate(REGISTRY, subject="vehicle_telemetry")
        )
        assert_that(
            rows | beam.Map(lambda r: (r["_position"], r["vehicle_id"], r["fuel_level_pct"])),
            equal_to([("0", "veh-1", None), ("1", "veh-1", 61.0)]),
            label="rows",
        )
        assert_that(
            dead
            | beam.Map(
                lambda d: (d.record.position, d.record.partition, d.error_type, d.record.value)
            ),
            equal_to(
                [
                    (str(i + 2), "2", reason, value)
                    for i, (_, value, reason) in enumerate(FRAMED_CASES)
                ]
            ),
            label="dead",
        )


def test_transform_accepts_plain_and_framed_json_for_a_json_subject():
    values = [json.dumps(GOOD_TWEET).encode(), encode_framed(TWEET, GOOD_TWEET)]
    values += [value for _, value, _ in PLAIN_CASES]
    with TestPipeline() as p:
        rows, dead = p | beam.Create(_records(values)) | DecodeAndValidate(subject="tweet")
        assert_that(rows | beam.Map(lambda r: r["_position"]), equal_to(["0", "1"]), label="rows")
        assert_that(
            dead | beam.Map(lambda d: (d.error_type, d.schema_subject, d.stage)),
            equal_to([(reason, "tweet", "decode") for _, _, reason in PLAIN_CASES]),
            label="dead",
        )


def test_unknown_subject_or_version_fails_fast_naming_the_parameter():
    with pytest.raises(ConfigError, match=r"subject: unknown subject 'nope'"):
        DecodeAndValidate(subject="nope")
    with pytest.raises(ConfigError, match=r"subject: subject 'tweet' has no version 9"):
        DecodeAndValidate(subject="tweet", version=9)


def test_format_is_checked_against_the_subject():
    with pytest.raises(ConfigError, match=r"format: subject 'tweet' is json, not avro"):
        DecodeAndValidate(subject="tweet", format="avro")
    with pytest.raises(ConfigError, match=r"format: expected one of auto, avro, json"):
        DecodeAndValidate(subject="tweet", format="xml")


def test_display_data_names_the_schema_without_secrets():
    registry = ConfluentRegistry("http://127.0.0.1:9", {"basic.auth.user.info": "bob:hunter2"})
    transform = DecodeAndValidate.__new__(DecodeAndValidate)
    transform._registry, transform._reader, transform._format = registry, V2, "auto"
    transform._max_record_bytes = 1 << 20
    shown = transform.display_data()
    assert shown["subject"] == "vehicle_telemetry" and shown["version"] == 2
    assert "hunter2" not in repr(shown)


def _unbounded(schema: dict, path: str = "") -> list[str]:
    found = []
    kind = schema.get("type")
    if kind == "string" and "maxLength" not in schema and "enum" not in schema:
        found.append(path or "(top)")
    if kind == "array":
        if "maxItems" not in schema:
            found.append(path or "(top)")
        found += _unbounded(schema.get("items", {}), f"{path}[]")
    for name, child in schema.get("properties", {}).items():
        found += _unbounded(child, f"{path}.{name}" if path else name)
    return found


def test_every_string_and_array_of_the_packaged_json_schemas_is_bounded():
    registry = LocalFileRegistry()
    json_schemas = [
        registry.get(subject, version)
        for subject in registry.subjects()
        for version in registry.versions(subject)
        if registry.get(subject, version).format == "json"
    ]
    assert json_schemas
    for schema in json_schemas:
        assert _unbounded(schema.schema) == [], (schema.subject, schema.version)


@pytest.mark.parametrize("scheme", ["http", "file", "ftp", "relative"])
def test_a_json_schema_ref_to_another_document_is_not_followed(scheme, tmp_path):
    import socket

    from schemas.codecs import JsonCodec

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    (tmp_path / "other.json").write_text('{"type": "string"}')
    target = {
        "http": f"http://127.0.0.1:{listener.getsockname()[1]}/other.json",
        "file": (tmp_path / "other.json").as_uri(),
        "ftp": f"ftp://127.0.0.1:{listener.getsockname()[1]}/other.json",
        "relative": "other.json",
    }[scheme]
    with pytest.raises(Exception, match="not followed"):
        JsonCodec({"properties": {"a": {"$ref": target}}})
    with pytest.raises(socket.timeout):
        listener.accept()  # nobody connected
    listener.close()
    # A reference inside the schema still resolves.
    local = {
        "definitions": {"s": {"type": "string"}},
        "properties": {"a": {"$ref": "#/definitions/s"}},
    }
    assert JsonCodec(local).decode(b'{"a": "x"}') == {"a": "x"}


# --- FormatMismatch, UnusableSchema and unknown ids that become known -------------------


def _write(root, subject, version, schema):
    (root / subject).mkdir(exist_ok=True)
    suffix = ".avsc" if isinstance(schema, dict) and schema.get("type") == "record" else ".json"
    (root / subject / f"{version}{suffix}").write_text(json.dumps(schema))


AVRO_S = {"type": "record", "name": "S", "fields": [{"name": "a", "type": "string"}]}
JSON_S = {"type": "object", "properties": {"a": {"type": "string"}}}


@pytest.fixture
def mixed_registry(tmp_path):
    """Subject ``m``: version 1 Avro, version 2 JSON Schema; ``u``: an unusable version 1."""
    _write(tmp_path, "m", 1, AVRO_S)
    _write(tmp_path, "m", 2, JSON_S)
    _write(tmp_path, "u", 1, {"type": "nonsense"})  # fastjsonschema: "Unknown type"
    _write(tmp_path, "u", 2, JSON_S)
    return LocalFileRegistry(tmp_path)


def test_a_frame_of_the_other_format_in_the_same_subject_is_a_format_mismatch(mixed_registry):
    avro, json_schema = mixed_registry.get("m", 1), mixed_registry.get("m", 2)
    avro_value, json_value = encode_framed(avro, {"a": "x"}), encode_framed(json_schema, {"a": "x"})
    with pytest.raises(Rejected, match=r"schema id \d+ is avro; expected json") as caught:
        RecordDecoder(mixed_registry, json_schema).decode(avro_value)
    assert (caught.value.reason, caught.value.schema_id) == ("FormatMismatch", avro.schema_id)
    assert _reason(RecordDecoder(mixed_registry, avro), json_value) == "FormatMismatch"
    # The same frames decode for a reader of their own format.
    assert RecordDecoder(mixed_registry, json_schema).decode(json_value) == {"a": "x"}
    assert RecordDecoder(mixed_registry, avro).decode(avro_value) == {"a": "x"}


def test_a_json_frame_for_an_avro_only_decoder_is_a_format_mismatch():
    value = encode_framed(TWEET, GOOD_TWEET)
    assert _reason(RecordDecoder(REGISTRY, TWEET, "avro"), value) == "FormatMismatch"
    assert RecordDecoder(REGISTRY, TWEET, "json").decode(value)["id"] == "1"


def test_a_writer_schema_that_does_not_compile_is_an_unusable_schema(mixed_registry):
    bad = mixed_registry.get("u", 1)
    value = frame(bad.schema_id, b'{"a": "x"}')
    with pytest.raises(Rejected, match=r"cannot be compiled: Unknown type") as caught:
        RecordDecoder(mixed_registry, mixed_registry.get("u", 2)).decode(value)
    assert (caught.value.reason, caught.value.schema_id) == ("UnusableSchema", bad.schema_id)


def test_transform_dead_letters_format_mismatch_and_unusable_schema(mixed_registry):
    m1, m2 = mixed_registry.get("m", 1), mixed_registry.get("m", 2)
    values = [encode_framed(m2, {"a": "ok"}), encode_framed(m1, {"a": "x"})]
    with TestPipeline() as p:
        rows, dead = (
            p | beam.Create(_records(values)) | DecodeAndValidate(mixed_registry, subject="m")
        )
        assert_that(rows | beam.Map(lambda r: r["a"]), equal_to(["ok"]), label="rows")
        assert_that(
            dead | beam.Map(lambda d: (d.record.position, d.error_type, d.schema_id)),
            equal_to([("1", "FormatMismatch", m1.schema_id)]),
            label="dead",
        )
    u1 = mixed_registry.get("u", 1)
    with TestPipeline() as p:
        _, dead = (
            p
            | beam.Create(_records([frame(u1.schema_id, b"{}")]))
            | DecodeAndValidate(mixed_registry, subject="u")
        )
        assert_that(
            dead | beam.Map(lambda d: (d.error_type, d.schema_id)),
            equal_to([("UnusableSchema", u1.schema_id)]),
        )


class _DirectoryRegistry(LocalFileRegistry):
    """A file registry that rereads its directory on every id lookup (a registry that
    learns new schemas while a pipeline runs), counting the lookups."""

    def __init__(self, root):
        super().__init__(root)
        self.lookups = 0

    def by_id(self, schema_id):
        self.lookups += 1
        lookups, root = self.lookups, self.root
        self.__init__(root)
        self.lookups = lookups
        return super().by_id(schema_id)


class _Clock:
    """Stands in for the ``time`` module in transforms.validate: a clock the test moves."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


def test_an_unknown_schema_id_is_asked_again_after_the_retry_interval(tmp_path, monkeypatch):
    import transforms.validate as validate

    clock = _Clock()
    monkeypatch.setattr(validate, "time", clock)
    _write(tmp_path, "s", 1, JSON_S)
    registry = _DirectoryRegistry(tmp_path)
    reader = registry.get("s", 1)
    decoder = RecordDecoder(registry, reader)
    new_id = schema_id_for("s", 2)
    value = frame(new_id, b'{"a": "x"}')
    with pytest.raises(Rejected, match=f"the registry has no schema id {new_id}") as caught:
        decoder.decode(value)
    assert caught.value.reason == "UnknownSchemaId" and registry.lookups > 0
    asked = registry.lookups
    _write(tmp_path, "s", 2, JSON_S)  # the producer registers version 2
    # Within the interval the miss is remembered: no request per record.
    clock.now += validate._UNKNOWN_ID_RETRY_S - 0.001
    assert _reason(decoder, value) == "UnknownSchemaId"
    assert registry.lookups == asked
    # After it, the registry is asked again and the record decodes.
    clock.now += 0.001
    assert decoder.decode(value) == {"a": "x"}
    assert registry.lookups > asked
    asked = registry.lookups
    # And a known id is not asked again.
    clock.now += 10 * validate._UNKNOWN_ID_RETRY_S
    assert decoder.decode(value) == {"a": "x"}
    assert registry.lookups == asked


def test_the_unknown_id_retry_interval_is_bounded():
    import transforms.validate as validate

    assert 0 < validate._UNKNOWN_ID_RETRY_S <= 300


# --- plain JSON's first byte, headers, settings and counters -------------------------------


@pytest.mark.parametrize("first", [b"\t", b"\n", b"\r", b" "])
def test_plain_json_may_start_with_whitespace(first):
    assert RecordDecoder(REGISTRY, TWEET).decode(first + json.dumps(GOOD_TWEET).encode())["id"]


@pytest.mark.parametrize("first", [0x01, 0x08, 0x0B, 0x0C, 0x0E, 0x1F])
def test_plain_json_starting_with_a_control_byte_is_a_bad_magic_byte(first):
    value = bytes([first]) + json.dumps(GOOD_TWEET).encode()
    with pytest.raises(Rejected, match=f"expected magic byte 0 or a JSON text, got 0x{first:02x}"):
        RecordDecoder(REGISTRY, TWEET).decode(value)


def test_an_avro_only_decoder_refuses_plain_json():
    with pytest.raises(Rejected, match=r"expected magic byte 0 \(a Confluent frame\), got 0x7b"):
        RecordDecoder(REGISTRY, TWEET, "avro").decode(json.dumps(GOOD_TWEET).encode())


def test_rejections_carry_the_schema_id_they_named():
    with pytest.raises(Rejected) as caught:
        RecordDecoder(REGISTRY, V2).decode(GOOD_V1 + b"\x02")
    assert (caught.value.reason, caught.value.schema_id) == ("CorruptPayload", V1.schema_id)
    with pytest.raises(Rejected) as caught:
        RecordDecoder(REGISTRY, TWEET).decode(b'{"id": ')
    assert (caught.value.reason, caught.value.schema_id) == ("InvalidJson", TWEET.schema_id)
    with pytest.raises(Rejected) as caught:
        RecordDecoder(REGISTRY, V2).decode(frame(0x7FFFFFFE, b"x"))
    assert caught.value.schema_id == 0x7FFFFFFE
    with pytest.raises(Rejected) as caught:
        RecordDecoder(REGISTRY, V2).decode(GOOD_V1[:3])
    assert caught.value.schema_id is None


def test_the_decoder_names_its_reader():
    assert RecordDecoder(REGISTRY, V2).reader == V2


def _run(values, transform):
    p = TestPipeline()
    _ = p | beam.Create(_records(values)) | transform
    result = p.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query()["counters"]
        if c.key.metric.namespace == "dataplane.decode"
    }
    return counters


def test_decode_counts_rows_and_dead_letters_per_reason():
    values = [GOOD_V1, GOOD_V2, GOOD_V1[:3], b"", b"\x07x"]
    counters = _run(values, DecodeAndValidate(REGISTRY, subject="vehicle_telemetry"))
    assert counters == {
        "decoded": 2,
        "dead_letters": 3,
        "dead_letters.TruncatedPayload": 1,
        "dead_letters.EmptyValue": 1,
        "dead_letters.BadMagicByte": 1,
    }


def test_unreadable_header_names_make_a_dead_letter_naming_them():
    from transforms.record import UNREADABLE_HEADER_PREFIX

    record = make_record(
        source="kafka",
        stream="t",
        partition=0,
        position=0,
        value=GOOD_V1,
        event_time_ms=0,
        headers=[("ok", b"1"), (UNREADABLE_HEADER_PREFIX + "ff00", b"v")],
    )
    with TestPipeline() as p:
        rows, dead = (
            p | beam.Create([record]) | DecodeAndValidate(REGISTRY, subject="vehicle_telemetry")
        )
        assert_that(rows, equal_to([]), label="rows")
        assert_that(
            dead | beam.Map(lambda d: (d.error_type, d.message)),
            equal_to(
                [
                    (
                        "UnreadableHeaders",
                        "header names that are not UTF-8 (hex): ff00; "
                        f"kept as {UNREADABLE_HEADER_PREFIX}<hex>",
                    )
                ]
            ),
            label="dead",
        )


def test_a_record_at_the_size_limit_decodes_and_one_byte_more_does_not():
    size = len(GOOD_V1)
    counters = _run(
        [GOOD_V1], DecodeAndValidate(REGISTRY, subject="vehicle_telemetry", max_record_bytes=size)
    )
    assert counters.get("decoded") == 1
    with TestPipeline() as p:
        _, dead = (
            p
            | beam.Create(_records([GOOD_V1]))
            | DecodeAndValidate(REGISTRY, subject="vehicle_telemetry", max_record_bytes=size - 1)
        )
        assert_that(
            dead | beam.Map(lambda d: (d.error_type, d.message, d.schema_subject)),
            equal_to(
                [
                    (
                        "RecordTooLarge",
                        f"the record is {size:,} bytes (value, key and headers); "
                        f"the limit is {size - 1:,} (max_record_bytes)",
                        "vehicle_telemetry",
                    )
                ]
            ),
        )


@pytest.mark.parametrize("limit", [0, -5])
def test_max_record_bytes_must_be_positive(limit):
    with pytest.raises(ConfigError, match=f"max_record_bytes: must be positive, got {limit}"):
        DecodeAndValidate(subject="tweet", max_record_bytes=limit)


def test_display_data_shows_every_setting():
    transform = DecodeAndValidate(
        REGISTRY, subject="vehicle_telemetry", version=1, format="avro", max_record_bytes=99
    )
    assert transform.display_data() == {
        "registry": repr(REGISTRY),
        "subject": "vehicle_telemetry",
        "version": 1,
        "schema_id": V1.schema_id,
        "format": "avro",
        "max_record_bytes": 99,
    }
    assert (
        DecodeAndValidate(subject="tweet")
        .display_data()["registry"]
        .startswith("LocalFileRegistry(")
    )
