"""ReadFromPubSub (bounded pull) against the Pub/Sub emulator; ReadFromFiles on JSONL/Parquet."""

import json
import time
import uuid

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import collect
from transforms.sources import ReadFromFiles, ReadFromPubSub

pytestmark = pytest.mark.integration

PROJECT = "test-project"  # Beam's project-id rule: at least 6 characters


def _topic_and_subscription():
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = uuid.uuid4().hex[:10]
    topic = publisher.topic_path(PROJECT, f"topic-{name}")
    subscription = subscriber.subscription_path(PROJECT, f"sub-{name}")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)
    return publisher, topic, subscription


def _publish(publisher, topic, count, **attributes):
    futures = [
        publisher.publish(topic, f"m{n}".encode(), ts=str(1_000_000 + n), **attributes)
        for n in range(count)
    ]
    return [f.result(timeout=30) for f in futures]


def test_bounded_pull_reads_every_message_with_attributes_and_event_time(pubsub_emulator):
    publisher, topic, subscription = _topic_and_subscription()
    ids = _publish(publisher, topic, 250, source="gen")
    (records,) = collect(
        lambda p: (
            p | ReadFromPubSub(subscription=subscription, bounded=True, timestamp_attribute="ts")
        )
    )
    assert sorted(r.position for r in records) == sorted(ids)
    by_value = {r.value: r for r in records}
    assert by_value[b"m7"].event_time_ms == 1_000_007
    assert dict(by_value[b"m7"].headers)["source"] == b"gen"
    assert {r.source for r in records} == {"pubsub"} and {r.stream for r in records} == {
        subscription
    }
    (again,) = collect(lambda p: p | ReadFromPubSub(subscription=subscription, bounded=True))
    assert again == []  # acknowledged: nothing is delivered twice


class _FailOnce(beam.DoFn):
    def process(self, record):
        raise RuntimeError("downstream failure before the records were safe")


def test_messages_are_acknowledged_only_after_they_are_handed_on(pubsub_emulator):
    publisher, topic, subscription = _topic_and_subscription()
    _publish(publisher, topic, 40)
    with pytest.raises(Exception, match="downstream failure"):
        collect(
            lambda p: (
                p
                | ReadFromPubSub(subscription=subscription, bounded=True, ack_deadline_s=10)
                | beam.ParDo(_FailOnce())
            )
        )
    # The failed run's lease (10 s) runs out and the unacknowledged messages come back:
    # read until all 40 are back (each read acknowledges what it hands on), within a limit.
    values = []
    deadline = time.monotonic() + 120
    while len(values) < 40 and time.monotonic() < deadline:
        (records,) = collect(
            lambda p: p | ReadFromPubSub(subscription=subscription, bounded=True, ack_deadline_s=10)
        )
        values += [r.value for r in records]
    assert sorted(values) == sorted(f"m{n}".encode() for n in range(40))


def test_max_records_caps_a_bounded_pull(pubsub_emulator):
    publisher, topic, subscription = _topic_and_subscription()
    _publish(publisher, topic, 30)
    (records,) = collect(lambda p: p | ReadFromPubSub(subscription=subscription, max_records=12))
    assert len(records) == 12


def test_jsonl_and_parquet_files_replay_as_records(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"n": 1}\n{"n": 2}\n\n{"n": 3}\n')
    raw = pa.table({"key": [b"k1", b"k2"], "value": [b"x", b"y"], "_event_time_ms": [5, 6]})
    pq.write_table(raw, tmp_path / "raw.parquet")
    pq.write_table(pa.table({"id": ["1"], "text": ["hi"]}), tmp_path / "rows.parquet")
    (records,) = collect(lambda p: p | ReadFromFiles(str(tmp_path / "*")))
    by_stream = {}
    for record in records:
        by_stream.setdefault(record.stream.rsplit("/", 1)[-1], []).append(record)
    assert sorted((r.position, r.value) for r in by_stream["a.jsonl"]) == [
        ("0", b'{"n": 1}'),
        ("1", b'{"n": 2}'),
        ("2", b'{"n": 3}'),
    ]
    assert sorted((r.key, r.value, r.event_time_ms) for r in by_stream["raw.parquet"]) == [
        (b"k1", b"x", 5),
        (b"k2", b"y", 6),
    ]
    assert [json.loads(r.value) for r in by_stream["rows.parquet"]] == [{"id": "1", "text": "hi"}]
    assert {r.source for r in records} == {"file"}


def test_an_empty_pattern_match_reads_nothing(tmp_path):
    (records,) = collect(lambda p: p | ReadFromFiles(str(tmp_path / "*.jsonl")))
    assert records == []
