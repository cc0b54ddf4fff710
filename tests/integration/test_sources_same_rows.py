"""The same tweets through the sentiment pipeline from every source give the same Delta rows."""

import uuid

import pytest

from beam_pipelines import sentiment
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from tests.helpers import read_table

pytestmark = pytest.mark.integration

COORDINATES = ["_record_id", "_source", "_stream", "_partition", "_position", "_event_time_ms"]


def _messages():
    # Null and empty values have no equivalent on every transport (JSONL lines, Kinesis data).
    return [
        m
        for m in generate_tweets(300, bad_ratio=0.1, seed=21)
        if m.kind not in ("null_value", "empty_value")
    ]


def _rows(path):
    table = read_table(path)
    table = table.drop_columns([c for c in table.column_names if c.startswith("_")])
    return sorted(table.to_pylist(), key=lambda r: r["id"])


def _dead_letters(path):
    # Keys, headers and failure times differ by transport and run; the payload and verdict not.
    table = read_table(path).select(["value", "stage", "error_type", "message"])
    return sorted(table.to_pylist(), key=lambda r: (r["value"], r["error_type"]))


def _run(source, lake):
    summary = sentiment.run(
        [f"--source={source}", f"--output={lake}/out", f"--dlq={lake}/dlq", "--bounded"]
    )
    return summary, _rows(f"{lake}/out"), _dead_letters(f"{lake}/dlq")


def test_kafka_kinesis_pubsub_and_file_sources_give_the_same_rows(
    kafka_bootstrap, moto_endpoint, pubsub_emulator, tmp_path
):
    from google.cloud import pubsub_v1

    name = uuid.uuid4().hex[:10]
    topic = f"projects/test-project/topics/tweets-{name}"
    subscription = f"projects/test-project/subscriptions/tweets-{name}"
    pubsub_v1.PublisherClient().create_topic(name=topic)
    pubsub_v1.SubscriberClient().create_subscription(name=subscription, topic=topic)
    sources = {
        "kafka": (f"kafka://{kafka_bootstrap}/tweets-{name}", None),
        "kinesis": (
            f"kinesis://tweets-{name}?endpoint={moto_endpoint}&region=us-east-1",
            None,
        ),
        "pubsub": (f"pubsub://{subscription}?timestamp_attribute=ts", f"pubsub://{topic}"),
        "file": (f"file://{tmp_path}/in/tweets.jsonl", None),
    }
    results = {}
    for kind, (read_uri, write_uri) in sources.items():
        target = write_uri or read_uri.split("?", 1)[0]
        if kind == "kinesis":
            target = read_uri
        written = publish(target, _messages(), partitions=2)
        assert sum(written.values()) == len(_messages()), (kind, written)
        results[kind] = _run(read_uri, tmp_path / kind)

    kafka_summary, kafka_rows, kafka_dead = results["kafka"]
    assert kafka_summary.records_in == len(_messages())
    assert len(kafka_rows) == sum(m.kind == "tweet" for m in _messages())
    for kind, (summary, rows, dead) in results.items():
        assert summary.records_in == kafka_summary.records_in, kind
        assert rows == kafka_rows, kind
        assert dead == kafka_dead, kind
    kinesis_lag = results["kinesis"][0].source_lag
    assert len(kinesis_lag) == 2 and all(k.endswith("ms") for k in kinesis_lag), kinesis_lag
    assert set(results["kafka"][0].source_lag.values()) == {0}
    sources_seen = {read_table(f"{tmp_path}/{k}/out")["_source"][0].as_py() for k in results}
    assert sources_seen == {"kafka", "kinesis", "pubsub", "file"}
