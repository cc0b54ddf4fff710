"""One URI parser for reading and writing: what each part means, and every message it gives."""

import pytest

from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from schemas.errors import ConfigError
from transforms.sources import read_from_uri
from transforms.sources.uri import ParsedUri, parse_uri


@pytest.mark.parametrize(
    ("uri", "scheme", "servers", "name"),
    [
        ("kafka://h:1,h:2/tweets?group=g", "kafka", "h:1,h:2", "tweets"),
        ("kinesis://events/?region=eu-west-1", "kinesis", "", "events"),
        ("pubsub://projects/p/topics/t", "pubsub", "", "projects/p/topics/t"),
        ("pubsub://projects/p/subscriptions/s/", "pubsub", "", "projects/p/subscriptions/s"),
        ("file:///data/*.jsonl?format=jsonl", "file", "", "/data/*.jsonl"),
        ("file://relative/x.jsonl", "file", "", "relative/x.jsonl"),
        ("dlq:/lake/dead_letters?stage=decode", "dlq", "", "/lake/dead_letters"),
        ("dlq:s3://bucket/dead_letters?error_type=A", "dlq", "", "s3://bucket/dead_letters"),
    ],
)
def test_the_parts_of_each_scheme(uri, scheme, servers, name):
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.servers, parsed.name) == (scheme, servers, name)


def test_parameters_keep_every_value_and_the_last_wins():
    parsed = parse_uri("dlq:/t?error_type=A,B&error_type=C&stage=s&stage=t")
    assert parsed.param("stage") == "t"
    assert parsed.param("missing") is None
    assert parsed.listed("error_type") == ["A", "B", "C"]
    assert parsed == ParsedUri("dlq", "/t", "", {"error_type": ["A,B", "C"], "stage": ["s", "t"]})


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nats://s", r"expected kafka://HOST:PORT/TOPIC, .*file:///PATH/PATTERN or dlq:TABLE"),
        ("kafka://h:1/", "expected kafka://HOST:PORT/TOPIC"),
        ("kafka:///t", "expected kafka://HOST:PORT/TOPIC"),
        ("kafka://h:1/a/b", "expected kafka://HOST:PORT/TOPIC"),
        ("kinesis://", "expected kinesis://STREAM"),
        ("kinesis://a/b", "expected kinesis://STREAM"),
        ("file://", "expected file:///PATH/PATTERN"),
        ("dlq:?stage=s", r"expected dlq:TABLE \(a path or s3:// URI\)"),
    ],
)
def test_malformed_uris_name_the_option(uri, message):
    with pytest.raises(ConfigError, match=f"--source: {message}"):
        parse_uri(uri)
    with pytest.raises(ConfigError, match=f"--to: {message}"):
        parse_uri(uri, option="--to")


def test_unknown_parameters_are_named_with_the_known_ones():
    parsed = parse_uri("kinesis://s?colour=red&region=r", option="--to")
    with pytest.raises(ConfigError, match=r"--to: unknown kinesis:// parameters \['colour'\]"):
        parsed.check_params({"region"})
    parsed.check_params({"region", "colour"})


def test_reading_names_the_dlq_scheme_among_the_expected():
    with pytest.raises(ConfigError, match=r"--source: expected .* or dlq:TABLE; got 'nats://s'"):
        read_from_uri("nats://s")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nats://s", r"--to: expected kafka://HOST:PORT/TOPIC, .* or dlq:TABLE; got 'nats://s'"),
        ("kafka://h:1/", "--to: expected kafka://HOST:PORT/TOPIC"),
        ("kinesis://a/b", "--to: expected kinesis://STREAM"),
        ("file://", "--to: expected file:///PATH/PATTERN"),
        ("dlq:/lake/dead_letters", r"--to: expected kafka://, kinesis://, pubsub://projects/P/"),
    ],
)
def test_writing_reads_uris_as_reading_does(uri, message):
    with pytest.raises(ConfigError, match=message):
        publish(uri, generate_tweets(1))


def test_a_file_uri_names_the_same_file_for_writing_and_reading(tmp_path):
    uri = f"file://{tmp_path}/in/tweets.jsonl"
    written = publish(uri, generate_tweets(5, bad_ratio=0.0))
    assert sum(written.values()) == 5
    assert (tmp_path / "in" / "tweets.jsonl").read_bytes().count(b"\n") == 5
    assert read_from_uri(uri).display_data()["pattern"] == parse_uri(uri).name
