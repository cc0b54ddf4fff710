"""The README's own-job example (tests/integration/user_job.py) against a real broker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from beam_pipelines.feeds.kafka import produce
from beam_pipelines.feeds.tweets import generate_tweets
from tests.helpers import read_table
from tests.integration.user_job import run_job

pytestmark = pytest.mark.integration


def _group_offsets(bootstrap: str, topic: str, group: str, partitions: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        wanted = [TopicPartition(topic, p) for p in range(partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(wanted, timeout=10))
    finally:
        consumer.close()


def test_the_users_job_scores_every_tweet_once_and_keeps_the_rest(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=3)
    kinds = produce(kafka_bootstrap, topic, generate_tweets(300, bad_ratio=0.1, seed=5))

    run_job(kafka_bootstrap, topic, str(tmp_path))

    scored, dead = read_table(f"{tmp_path}/scored"), read_table(f"{tmp_path}/dead_letters")
    assert (scored.num_rows, dead.num_rows) == (kinds["tweet"], 300 - kinds["tweet"])
    assert scored["sentiment_compound"].null_count == 0
    assert set(scored.column_names) >= {"id", "text", "user", "hashtags", "_record_id"}
    ids = scored["_record_id"].to_pylist() + dead["_record_id"].to_pylist()
    assert len(set(ids)) == 300
    assert _group_offsets(kafka_bootstrap, topic, "my-job", partitions=3) == 300

    run_job(kafka_bootstrap, topic, str(tmp_path))  # resumes after both tables: adds nothing

    again = read_table(f"{tmp_path}/scored"), read_table(f"{tmp_path}/dead_letters")
    assert (again[0].num_rows, again[1].num_rows) == (scored.num_rows, dead.num_rows)
