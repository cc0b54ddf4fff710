"""The sentiment pipeline streaming from Kinesis (kinesalite) through a live split and merge.

Records are put while the pipeline runs; a shard is split, more records are put,
the two children are merged, and more again. Every record must land once, each
partition key's records in the order they were put (parents are read before
their children), and a restart must resume after the sequence numbers the tables
committed: it reads only what was put while it was down.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import boto3
import pytest

from beam_pipelines.feeds.tweets import generate_tweets
from bench.streaming import StreamingProcess, TableWatcher
from tests.helpers import rows_in_commit_order, split_then_merge, wait_active

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_UP_S = 120.0
BOUND_S = 60.0
KEYS = [f"user-{n}" for n in range(8)]


class _Puts:
    """Puts generated tweets under a few partition keys; remembers where each landed."""

    def __init__(self, client: Any, stream: str) -> None:
        self.client, self.stream = client, stream
        self.landed: dict[tuple[str, str], bytes] = {}
        self.order: dict[str, list[bytes]] = defaultdict(list)  # key -> values, as put

    def put(self, count: int, seed: int) -> list[tuple[str, str]]:
        keys = []
        messages = list(generate_tweets(count, bad_ratio=0.05, seed=seed))
        for n, message in enumerate(messages):  # one by one: each key's order is put order
            key, value = KEYS[n % len(KEYS)], message.value or b""
            answer = self.client.put_record(StreamName=self.stream, Data=value, PartitionKey=key)
            where = (answer["ShardId"], answer["SequenceNumber"])
            self.landed[where] = value
            self.order[key].append(value)
            keys.append(where)
        return keys


def _sentiment(stream: str, endpoint: str, lake: Path) -> StreamingProcess:
    return StreamingProcess(
        "beam_pipelines.sentiment",
        [
            f"--source=kinesis://{stream}?endpoint={endpoint}&region=us-east-1",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            "--max_batch_latency_s=1",
        ],
    ).start()


def _records_in(stdout: str) -> int:
    """The run summary's "records in"."""
    found = re.findall(r"records in\D+([\d,]+)", stdout)
    assert found, stdout[-2000:]
    return int(found[-1].replace(",", ""))


def test_a_live_split_and_merge_while_streaming_loses_nothing_and_keeps_key_order(
    kinesalite_endpoint: str, tmp_path: Path
) -> None:
    client = boto3.client("kinesis", endpoint_url=kinesalite_endpoint, region_name="us-east-1")
    stream = f"live-{tmp_path.name[-12:]}".replace("_", "-")
    client.create_stream(StreamName=stream, ShardCount=2)
    wait_active(client, stream)
    puts = _Puts(client, stream)
    watcher = TableWatcher([str(tmp_path / "tweets"), str(tmp_path / "dead_letters")])
    run = _sentiment(stream, kinesalite_endpoint, tmp_path)
    try:
        assert watcher.wait_for(puts.put(80, seed=1), timeout_s=START_UP_S)
        shard = client.list_shards(StreamName=stream)["Shards"][0]
        between: list[tuple[str, str]] = []
        split_then_merge(client, stream, shard, lambda: between.extend(puts.put(80, seed=2)))
        after = puts.put(80, seed=3)
        assert watcher.wait_for(between + after, timeout_s=BOUND_S), "records after a reshard"
    finally:
        stopped = run.stop()
    assert stopped.exit_code == 0, stopped.stderr[-3000:]

    while_down = puts.put(40, seed=4)
    rerun = _sentiment(stream, kinesalite_endpoint, tmp_path)
    try:
        assert watcher.wait_for(while_down, timeout_s=START_UP_S)
    finally:
        again = rerun.stop()
    assert again.exit_code == 0, again.stderr[-3000:]
    assert _records_in(again.stdout) == 40  # resumed after the committed sequence numbers

    watcher.poll()
    assert set(watcher.copies) == set(puts.landed)  # nothing lost
    assert set(watcher.copies.values()) == {1}  # nothing twice
    shards = {shard for shard, _ in puts.landed}
    assert len(shards) >= 4  # records went to the parent, the split's children and the merge's
    key_of = {value: key for key, values in puts.order.items() for value in values}
    for table in ("tweets", "dead_letters"):  # in each table, each key's records in put order
        by_key: dict[str, list[bytes]] = defaultdict(list)
        for row in rows_in_commit_order(str(tmp_path / table)):
            value = puts.landed[(row["_partition"], row["_position"])]
            if table == "tweets":
                assert json.loads(value)["id"] == row["id"]  # the row is the tweet put there
            by_key[key_of[value]].append(value)
        for key, values in by_key.items():
            kept = set(values)
            assert values == [v for v in puts.order[key] if v in kept], f"{key} out of order"
