"""Our registry server and decoder against confluent-kafka's own serializers and client."""

import json
import shutil
import subprocess
import sys
import urllib.request
from datetime import datetime, timezone

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from schemas.base import RegistryUnavailableError
from schemas.codecs import encode_framed
from schemas.confluent import ConfluentRegistry
from schemas.registry import PACKAGED_SCHEMAS, LocalFileRegistry
from schemas.server import RegistryServer
from tests.helpers import collect, create_records
from transforms.sources import ReadFromKafka
from transforms.validate import DecodeAndValidate

pytestmark = pytest.mark.integration

LOCAL = LocalFileRegistry()
CANDIDATE = PACKAGED_SCHEMAS / "vehicle_telemetry" / "candidates" / "incompatible.avsc"


def _fixed_subject(subject):
    return lambda _ctx, _record_name: subject


def _reading(n):
    return {
        "vehicle_id": f"veh-{n % 3}",
        "ts": 1_790_000_000_000 + n * 1000,
        "speed_kph": 10.0 + n,
        "engine_temp_c": 85.5,
        "lat": 52.5,
        "lon": 13.4,
    }


def _avro_serializer(client, version):
    schema = LOCAL.get("vehicle_telemetry", version)
    return AvroSerializer(
        client,
        json.dumps(schema.schema),
        conf={"subject.name.strategy": _fixed_subject("vehicle_telemetry")},
    )


def test_confluent_avro_serializer_frames_v1_and_v2_that_our_pipeline_decodes(
    registry_url, kafka_bootstrap, new_topic
):
    client = SchemaRegistryClient({"url": registry_url})
    serializers = {1: _avro_serializer(client, 1), 2: _avro_serializer(client, 2)}
    topic = new_topic(partitions=2)
    context = SerializationContext(topic, MessageField.VALUE)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "log.connection.close": False})
    sent = []
    for n in range(60):
        version = 1 + n % 2  # v1 and v2 interleaved on one topic
        reading = _reading(n) if version == 1 else {**_reading(n), "fuel_level_pct": float(n)}
        producer.produce(topic, serializers[version](reading, context), partition=n % 2)
        sent.append(reading)
    assert producer.flush(30) == 0

    registry = ConfluentRegistry(registry_url)
    rows, dead = collect(
        lambda p: (
            p
            | ReadFromKafka(bootstrap_servers=kafka_bootstrap, topic=topic, bounded=True)
            | DecodeAndValidate(registry, subject="vehicle_telemetry")
        )
    )
    assert dead == []
    by_speed = {row["speed_kph"]: row for row in rows}
    assert len(by_speed) == 60
    for reading in sent:
        row = by_speed[reading["speed_kph"]]
        assert row["fuel_level_pct"] == reading.get("fuel_level_pct")
        assert row["ts"] == datetime.fromtimestamp(reading["ts"] / 1000, tz=timezone.utc)
        assert row["vehicle_id"] == reading["vehicle_id"]


def test_confluent_json_serializer_frames_tweets_that_our_decoder_validates(registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    tweet = LOCAL.latest("tweet")
    serializer = JSONSerializer(
        json.dumps(tweet.schema),
        client,
        conf={
            "auto.register.schemas": False,
            "use.latest.version": True,
            "subject.name.strategy": _fixed_subject("tweet"),
        },
    )
    payload = {
        "id": "7",
        "text": "framed",
        "created_at": "2026-11-01T00:00:00Z",
        "user": {"id": "u", "handle": "h"},
    }
    value = serializer(payload, SerializationContext("tweets", MessageField.VALUE))
    assert value[0] == 0 and int.from_bytes(value[1:5], "big") == tweet.schema_id
    rows, dead = collect(
        lambda p: (
            p
            | create_records([value, value[:-1]])
            | DecodeAndValidate(ConfluentRegistry(registry_url), subject="tweet")
        )
    )
    assert [r["text"] for r in rows] == ["framed"]
    assert [d.error_type for d in dead] == ["InvalidJson"]


def test_confluent_avro_deserializer_reads_what_our_encoder_frames(registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    deserializer = AvroDeserializer(client)
    value = encode_framed(LOCAL.get("vehicle_telemetry", 2), {**_reading(1), "fuel_level_pct": 3.0})
    decoded = deserializer(value, SerializationContext("t", MessageField.VALUE))
    assert decoded["fuel_level_pct"] == 3.0 and decoded["vehicle_id"] == "veh-1"


def test_the_rest_api_answers_like_a_confluent_registry(registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    v2 = LOCAL.get("vehicle_telemetry", 2)
    assert client.get_subjects() == ["tweet", "vehicle_telemetry"]
    assert client.get_versions("vehicle_telemetry") == [1, 2]
    latest = client.get_latest_version("vehicle_telemetry")
    assert (latest.version, latest.schema_id) == (2, v2.schema_id)
    assert json.loads(client.get_schema(v2.schema_id).schema_str) == v2.schema
    assert client.get_compatibility("vehicle_telemetry") == "FULL_TRANSITIVE"
    found = client.lookup_schema("vehicle_telemetry", Schema(json.dumps(v2.schema), "AVRO"))
    assert found.version == 2
    with pytest.raises(SchemaRegistryError) as missing:
        client.get_version("vehicle_telemetry", 9)
    assert missing.value.error_code == 40402
    with pytest.raises(SchemaRegistryError) as unknown:
        client.get_schema(12345)
    assert unknown.value.error_code == 40403


def test_compatibility_endpoint_and_read_only_registration(registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    bad = Schema(CANDIDATE.read_text(), "AVRO")
    good = Schema(json.dumps(LOCAL.get("vehicle_telemetry", 2).schema), "AVRO")
    assert client.test_compatibility("vehicle_telemetry", good) is True
    assert client.test_compatibility("vehicle_telemetry", bad) is False
    assert (
        client.register_schema("vehicle_telemetry", good)
        == LOCAL.get("vehicle_telemetry", 2).schema_id
    )  # already a version: answered, not refused
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema("vehicle_telemetry", bad)
    assert refused.value.error_code == 42205


def test_a_writable_server_checks_then_writes_the_next_version(tmp_path):
    root = tmp_path / "schemas"
    shutil.copytree(PACKAGED_SCHEMAS / "vehicle_telemetry", root / "vehicle_telemetry")
    v2 = json.loads((root / "vehicle_telemetry" / "2.avsc").read_text())
    v3 = {
        **v2,
        "fields": [
            *v2["fields"],
            {"name": "odometer_km", "type": ["null", "double"], "default": None},
        ],
    }
    with RegistryServer(LocalFileRegistry(root), writable=True) as server:
        client = SchemaRegistryClient({"url": server.url})
        with pytest.raises(SchemaRegistryError) as refused:
            client.register_schema("vehicle_telemetry", Schema(CANDIDATE.read_text(), "AVRO"))
        assert refused.value.http_status_code == 409
        schema_id = client.register_schema("vehicle_telemetry", Schema(json.dumps(v3), "AVRO"))
    written = LocalFileRegistry(root).get("vehicle_telemetry", 3)
    assert written.schema == v3 and written.schema_id == schema_id
    assert not (root / "vehicle_telemetry" / "4.avsc").exists()


def test_registry_errors_never_show_secrets():
    registry = ConfluentRegistry(
        "http://bob:hunter2@127.0.0.1:9", {"basic.auth.user.info": "", "max.retries": 0}
    )
    assert "hunter2" not in repr(registry)
    with pytest.raises(RegistryUnavailableError) as failed:
        registry.by_id(1)
    assert "hunter2" not in str(failed.value) and "***" in str(failed.value)


def _dataplane(*args, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "runners.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def test_schemas_check_exits_non_zero_for_the_incompatible_candidate():
    ok = _dataplane("schemas", "check")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok   vehicle_telemetry: 2 versions, FULL_TRANSITIVE" in ok.stdout
    rejected = _dataplane(
        "schemas", "check", "--subject", "vehicle_telemetry", "--candidate", str(CANDIDATE)
    )
    assert rejected.returncode == 1
    assert "writer type string cannot be read as long" in rejected.stdout
    usage = _dataplane("schemas", "check", "--candidate", str(CANDIDATE))
    assert usage.returncode == 2 and "exactly one --subject" in usage.stderr


def test_schemas_serve_runs_until_terminated():
    server = subprocess.Popen(
        [sys.executable, "-m", "runners.cli", "schemas", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = server.stdout.readline()
        url = banner.split(" at ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(f"{url}/subjects/tweet/versions") as answer:
            assert json.loads(answer.read()) == [1]
    finally:
        server.terminate()
    assert server.wait(timeout=10) == 0
