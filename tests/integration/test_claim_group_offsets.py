"""README claims: consumer-group offsets follow the Delta commits, only forward; a broker away
at that moment is logged and counted, and the table stays the truth.

"Consumer-group offsets are committed after the Delta commit that covers them: the offset after
the frontier, only forward. [...] A broker that is away at that moment is logged and counted;
the table stays the truth."
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from confluent_kafka import Consumer, TopicPartition

from beam_pipelines import sentiment
from beam_pipelines.feeds.tweets import generate_tweets
from beam_pipelines.launch.presets import resolve_runner
from runners.local.process import free_port
from schemas.registry import LocalFileRegistry
from tests.helpers import produce, read_table
from transforms.checkpoint.group_offsets import CommitGroupOffsets
from transforms.sinks import WriteToDelta
from transforms.sources.kafka import ReadFromKafka
from transforms.validate import DecodeAndValidate

pytestmark = pytest.mark.integration


def _produce_tweets(bootstrap: str, topic: str, count: int, seed: int) -> None:
    tweets = [m.value for m in generate_tweets(count, bad_ratio=0.0, seed=seed)]
    produce(bootstrap, topic, ((n % 2, value, 0) for n, value in enumerate(tweets)))


def _group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in found}


def _set_group_offset(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(offsets=[TopicPartition(topic, partition, offset)], asynchronous=False)
    finally:
        consumer.close()


def test_group_offsets_follow_the_commits_and_never_move_back(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic, group = new_topic(partitions=2), "claims-forward"
    flags = [
        f"--source=kafka://{kafka_bootstrap}/{topic}?group={group}",
        f"--output={tmp_path / 'out'}",
        f"--dlq={tmp_path / 'dlq'}",
        "--bounded",
        "--runner=direct",
    ]
    _produce_tweets(kafka_bootstrap, topic, 20, seed=1)
    sentiment.run(flags)
    assert _group_offsets(kafka_bootstrap, group, topic) == {0: 10, 1: 10}

    # Partition 0's group is somehow ahead of the table: the next commit must not pull it back.
    _set_group_offset(kafka_bootstrap, group, topic, 0, 1000)
    _produce_tweets(kafka_bootstrap, topic, 20, seed=2)
    summary = sentiment.run(flags)
    assert summary.valid == 20  # resumed after the table's frontier, not the group's offsets
    assert read_table(str(tmp_path / "out")).num_rows == 40
    assert _group_offsets(kafka_bootstrap, group, topic) == {0: 1000, 1: 20}


def test_a_broker_away_at_commit_time_is_counted_and_the_rows_are_kept(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic, group = new_topic(partitions=2), "claims-away"
    _produce_tweets(kafka_bootstrap, topic, 20, seed=3)
    # The group's broker is away (nothing listens there) when the sink's commits call it.
    away = CommitGroupOffsets(
        {"bootstrap.servers": f"127.0.0.1:{free_port()}", "group.id": group, "log_level": 0},
        topic,
        timeout_s=1,
    )
    options = PipelineOptions(["--runner=direct"])
    pipeline = beam.Pipeline(runner=resolve_runner(options, bounded=True), options=options)
    rows, _ = (
        pipeline
        | ReadFromKafka(bootstrap_servers=kafka_bootstrap, topic=topic, bounded=True)
        | DecodeAndValidate(LocalFileRegistry(), subject="tweet")
    )
    _ = rows | WriteToDelta(
        str(tmp_path / "out"),
        schema=pa.schema([("id", pa.string()), ("text", pa.string())]),
        app_id="claims",
        group_offsets=away,
    )
    result = pipeline.run()
    result.wait_until_finish()

    def counter(name: str) -> int:
        found = result.metrics().query(MetricsFilter().with_name(name))["counters"]
        return sum(c.committed or 0 for c in found)

    assert counter("group_offset_commit_failures") >= 1
    assert counter("group_offset_commits") == 0
    assert read_table(str(tmp_path / "out")).num_rows == 20  # the table is the truth
    assert _group_offsets(kafka_bootstrap, group, topic) == {0: -1001, 1: -1001}  # none


def _kafka_clients_alive() -> int:
    """librdkafka clients of this process: each runs one thread named ``rdk:main``."""
    tasks = Path("/proc/self/task")
    return sum((task / "comm").read_text().strip() == "rdk:main" for task in tasks.iterdir())


def test_the_consumer_that_commits_group_offsets_is_closed_when_the_run_ends(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic, group = new_topic(partitions=2), "claims-closed"
    _produce_tweets(kafka_bootstrap, topic, 20, seed=4)
    before = _kafka_clients_alive()
    sentiment.run(
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}?group={group}",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
            "--bounded",
            "--runner=direct",
        ]
    )
    assert _group_offsets(kafka_bootstrap, group, topic) == {0: 10, 1: 10}  # it did commit
    assert _kafka_clients_alive() == before  # and nothing it opened outlives the run
