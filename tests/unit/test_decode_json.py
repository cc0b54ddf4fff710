import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from schemas.registry import LocalFileRegistry
from transforms.errors import ConfigError
from transforms.record import make_record
from transforms.validate import DecodeJson

GOOD = {
    "id": "1",
    "text": "hello",
    "created_at": "2026-11-01T00:00:00.000Z",
    "user": {"id": "u1", "handle": "bob"},
}

CASES = [
    ("null", None, "NullValue"),
    ("empty", b"", "EmptyValue"),
    ("not utf8", b'{"text": "\xff"}', "NotUtf8"),
    ("invalid json", b'{"id": "1", ', "InvalidJson"),
    ("nan", b'{"x": NaN}', "InvalidJson"),
    ("wrong type", json.dumps({**GOOD, "text": 5}).encode(), "SchemaViolation"),
    (
        "missing field",
        json.dumps({k: v for k, v in GOOD.items() if k != "user"}).encode(),
        "SchemaViolation",
    ),
    ("oversize", json.dumps({**GOOD, "text": "x" * 2001}).encode(), "SchemaViolation"),
    ("array", b"[1, 2]", "SchemaViolation"),
    ("reserved", json.dumps({**GOOD, "_record_id": "spoof"}).encode(), "ReservedField"),
    ("deep nesting", b"[" * 100_000, "InvalidJson"),
]


def _records(values):
    return [
        make_record(
            source="kafka", stream="t", partition=0, position=i, value=v, event_time_ms=1000 + i
        )
        for i, v in enumerate(values)
    ]


def test_every_bad_kind_is_a_dead_letter_with_its_reason_and_coordinates():
    records = _records([json.dumps(GOOD).encode()] + [value for _, value, _ in CASES])
    with TestPipeline() as p:
        rows, dead = p | beam.Create(records) | DecodeJson("tweet")
        assert_that(
            rows | beam.Map(lambda r: (r["text"], r["_position"], r["_event_time_ms"])),
            equal_to([("hello", "0", 1000)]),
            label="rows",
        )
        assert_that(
            dead
            | beam.Map(
                lambda d: (
                    d.record.position,
                    d.error_type,
                    d.record.value,
                    d.schema_subject,
                    d.stage,
                )
            ),
            equal_to(
                [
                    (str(i + 1), reason, value, "tweet", "decode")
                    for i, (_, value, reason) in enumerate(CASES)
                ]
            ),
            label="dead",
        )


def test_schema_violation_message_names_the_failing_path():
    records = _records([json.dumps({**GOOD, "user": {"id": "u", "handle": 3}}).encode()])
    with TestPipeline() as p:
        _, dead = p | beam.Create(records) | DecodeJson("tweet")
        assert_that(dead | beam.Map(lambda d: "data.user.handle" in d.message), equal_to([True]))


def test_unknown_subject_fails_fast_naming_the_parameter():
    with pytest.raises(ConfigError, match=r"subject: unknown subject 'nope'"):
        DecodeJson("nope")


def test_unknown_version_fails_fast():
    with pytest.raises(ConfigError, match=r"subject: subject 'tweet' has no version 9"):
        DecodeJson("tweet", version=9)


def test_registry_ids_are_deterministic_and_root_is_checked(tmp_path):
    assert (
        LocalFileRegistry().latest("tweet").schema_id
        == LocalFileRegistry().latest("tweet").schema_id
    )
    with pytest.raises(ConfigError, match=r"registry root: .* is not a directory"):
        LocalFileRegistry(tmp_path / "missing")
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "1.json").write_text("{nope")
    with pytest.raises(ConfigError, match="cannot read schema"):
        LocalFileRegistry(tmp_path)
