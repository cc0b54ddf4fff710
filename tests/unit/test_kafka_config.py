import pytest

from beam_pipelines.launch.options import SourceOptions, kafka_settings
from schemas.errors import ConfigError
from transforms.sources import ReadFromKafka, read_from_uri
from transforms.sources.kafka_config import consumer_config, redact_text
from transforms.sources.kafka_partitions import _split_limit

SECRETS = {"sasl.password": "hunter2-secret", "ssl.key.password": "k3y-secret"}


def test_secrets_never_appear_in_display_data():
    read = ReadFromKafka(
        bootstrap_servers="127.0.0.1:1",
        topic="t",
        consumer_config={**SECRETS, "sasl.username": "bob"},
    )
    shown = str(read.display_data())
    assert "hunter2-secret" not in shown and "k3y-secret" not in shown
    assert "bob" in shown


def test_secrets_are_redacted_from_error_text():
    assert "hunter2" not in redact_text("login hunter2-secret failed", SECRETS)


def test_bad_librdkafka_setting_fails_without_echoing_secrets():
    from transforms.sources.kafka import _open_consumer

    config = consumer_config("127.0.0.1:1", {**SECRETS, "no.such.setting": "hunter2-secret"})
    with pytest.raises(ConfigError) as caught:
        _open_consumer(config)
    assert "consumer_config" in str(caught.value)
    assert "hunter2-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "middle"}, r"start: expected one of \['earliest', 'latest', 'committed'"),
        ({"start": "timestamp"}, 'start_timestamp_ms: required with start="timestamp"'),
        ({"start": "offsets"}, "start_offsets: required"),
        ({"start": "offsets", "start_offsets": {0: -5}}, "start_offsets: offsets must be >= 0"),
        ({"topic": ""}, "topic: expected a topic name"),
        ({"max_records": -1}, "max_records: must be at least 0, got -1"),
        ({"idle_timeout_s": 0}, "idle_timeout_s: must be at least 0.001, got 0"),
        ({"bootstrap_servers": ""}, "bootstrap_servers: expected host:port"),
        (
            {"consumer_config": {"enable.auto.commit": "true"}},
            r"consumer_config\['enable.auto.commit'\]: the reader needs enable.auto.commit=false",
        ),
        (
            {"consumer_config": {"enable.partition.eof": False}},
            r"consumer_config\['enable.partition.eof'\]: the reader needs",
        ),
        ({"consumer_config": {"x": [1]}}, r"consumer_config\['x'\]: expected a string, number"),
    ],
)
def test_read_from_kafka_config_errors(kwargs, message):
    args = {"bootstrap_servers": "127.0.0.1:9092", "topic": "t", **kwargs}
    with pytest.raises(ConfigError, match=message):
        ReadFromKafka(**args)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nats://s", r"--source: expected kafka://HOST:PORT/TOPIC, kinesis://STREAM, pubsub://"),
        ("kinesis://a/b", "--source: expected kinesis://STREAM"),
        ("kinesis://s?start=oldest", "iterator_type: expected one of"),
        ("kinesis://s?colour=red", r"--source: unknown kinesis:// parameters \['colour'\]"),
        ("pubsub://projects/p/things/x", "topic: expected projects/PROJECT/topics/NAME"),
        ("pubsub://projects/p/topics/t?x=1", r"unknown pubsub:// parameters \['x'\]"),
        ("file://", "--source: expected file:///PATH/PATTERN"),
        ("file:///d/*.csv?format=csv", "format: expected one of"),
        ("kafka://h:1/", "--source: expected kafka://HOST:PORT/TOPIC"),
        ("kafka://h:1/t?colour=red", r"--source: unknown kafka:// parameters \['colour'\]"),
        ("kafka://h:1/t?partitions=a", "--source: bad number"),
    ],
)
def test_source_uri_errors(uri, message):
    with pytest.raises(ConfigError, match=message):
        read_from_uri(uri)


def test_kafka_flags_and_properties_file(tmp_path):
    props = tmp_path / "client.properties"
    props.write_text("# comment\nsasl.username=bob\nsasl.password = s3cret\n")
    options = SourceOptions([f"--kafka_config_file={props}", "--kafka_config", "client.id=me"])
    assert kafka_settings(options) == {
        "sasl.username": "bob",
        "sasl.password": "s3cret",
        "client.id": "me",
    }
    with pytest.raises(ConfigError, match="--kafka_config: expected KEY=VALUE"):
        kafka_settings(SourceOptions(["--kafka_config", "novalue"]))
    with pytest.raises(ConfigError, match="--kafka_config_file: cannot read"):
        kafka_settings(SourceOptions([f"--kafka_config_file={tmp_path}/missing"]))


def test_max_records_is_shared_evenly_within_backlogs():
    assert _split_limit(7, {0: 10, 1: 10, 2: 10}) == {0: 3, 1: 2, 2: 2}
    assert _split_limit(100, {0: 5, 1: 0}) == {0: 5, 1: 0}
    assert sum(_split_limit(1000, {p: 400 for p in range(3)}).values()) == 1000
