"""A streaming Kafka read picks up partitions added to its topic while it runs.

The broker is the embedded one with its log in S3 (moto), so partitions can be
added under a running pipeline (see ``LocalKafkaBroker.add_partitions``). Records
written to the new partitions before and after they are discovered must land
exactly once, and a restart must resume the new partitions like the old ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from beam_pipelines.feeds.tweets import generate_tweets
from bench.streaming import StreamingProcess, TableWatcher, TimedProducer
from runners.local.aws import MotoServer
from runners.local.broker import LocalKafkaBroker, s3_broker_storage
from transforms.sources.kafka_admin import ensure_topic

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_UP_S = 120.0
DISCOVERY_S = 2.0
BOUND_S = 60.0  # discovery interval + a batch + slack for a busy machine


@pytest.fixture(scope="module")
def growable_broker(aws_env: None) -> Iterator[LocalKafkaBroker]:
    with MotoServer() as moto:
        storage = s3_broker_storage(moto.endpoint_url)
        with LocalKafkaBroker(storage_engine="s3://tansu/", storage_environment=storage) as b:
            yield b


def _sentiment(bootstrap: str, topic: str, lake: Path, *flags: str) -> StreamingProcess:
    return StreamingProcess(
        "beam_pipelines.sentiment",
        [
            f"--source=kafka://{bootstrap}/{topic}",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            "--max_batch_latency_s=1",
            f"--partition_discovery_s={DISCOVERY_S}",
            *flags,
        ],
    ).start()


def test_partitions_added_mid_run_are_read_from_their_start_exactly_once(
    growable_broker: LocalKafkaBroker, tmp_path: Path, runner_flags: list[str]
) -> None:
    bootstrap = growable_broker.bootstrap_servers
    topic = f"growing-{tmp_path.name}"
    ensure_topic(bootstrap, topic, partitions=2)
    before = TimedProducer(bootstrap, topic)
    watcher = TableWatcher([str(tmp_path / "tweets"), str(tmp_path / "dead_letters")])
    run = _sentiment(bootstrap, topic, tmp_path, *runner_flags)
    try:
        first = before.send(generate_tweets(200, bad_ratio=0.05, seed=1))
        assert watcher.wait_for(first, timeout_s=START_UP_S), "the first wave never landed"
        growable_broker.add_partitions(topic, 4)
        after = TimedProducer(bootstrap, topic)  # a producer that knows the new partitions
        grown = after.send(generate_tweets(200, bad_ratio=0.05, seed=2), partitions=[2, 3])
        assert {p for p, _ in grown} == {"2", "3"}
        assert watcher.wait_for(grown, timeout_s=BOUND_S), "the new partitions were not read"
        mixed = after.send(generate_tweets(200, bad_ratio=0.05, seed=3), partitions=[0, 1, 2, 3])
        assert watcher.wait_for(mixed, timeout_s=BOUND_S)
    finally:
        stopped = run.stop()
    assert stopped.exit_code == 0, stopped.stderr[-2000:]

    while_down = after.send(generate_tweets(200, bad_ratio=0.05, seed=4), partitions=[0, 1, 2, 3])
    rerun = _sentiment(bootstrap, topic, tmp_path, *runner_flags)
    try:
        assert watcher.wait_for(while_down, timeout_s=START_UP_S)
    finally:
        assert rerun.stop().exit_code == 0

    watcher.poll()
    produced = {**before.values, **after.values}
    assert len(produced) == 800
    assert set(watcher.copies) == set(produced)  # nothing lost
    assert set(watcher.copies.values()) == {1}  # nothing twice
    rows = DeltaTable(str(tmp_path / "tweets")).to_pyarrow_table().to_pylist()
    letters = DeltaTable(str(tmp_path / "dead_letters")).to_pyarrow_table().to_pylist()
    for letter in letters:
        assert letter["value"] == produced[(letter["_partition"], letter["_position"])]
    for row in rows:  # each row is the tweet produced at its coordinates
        source = json.loads(produced[(row["_partition"], row["_position"])] or b"{}")
        assert (row["id"], row["text"]) == (source["id"], source["text"])
