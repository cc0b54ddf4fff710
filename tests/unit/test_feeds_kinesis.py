"""The Kinesis producer against a fake client: batches, retries of refused entries, outages."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from beam_pipelines.feeds.kinesis import ensure_stream, put_records
from beam_pipelines.feeds.tweets import GeneratedMessage, generate_tweets
from schemas.errors import SourceUnavailableError


class FakeKinesis:
    """Stores what it accepts; refuses the first ``refusals`` entries it is given."""

    def __init__(self, *, refusals: int = 0, outages: int = 0) -> None:
        self.refusals, self.outages = refusals, outages
        self.calls: list[int] = []
        self.stored: list[dict[str, Any]] = []
        self.created: list[tuple[str, int]] = []
        self._sequence = itertools.count()

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        if self.outages:
            self.outages -= 1
            raise EndpointConnectionError(endpoint_url="http://fake")
        self.calls.append(len(Records))
        results = []
        for entry in Records:
            if self.refusals:
                self.refusals -= 1
                results.append({"ErrorCode": "ProvisionedThroughputExceededException"})
                continue
            self.stored.append(entry)
            results.append({"ShardId": "shard-0", "SequenceNumber": str(next(self._sequence))})
        return {"Records": results}

    def describe_stream_summary(self, *, StreamName: str) -> None:
        if StreamName not in dict(self.created):
            raise LookupError(StreamName)

    def create_stream(self, *, StreamName: str, ShardCount: int) -> None:
        self.created.append((StreamName, ShardCount))

    def get_waiter(self, name: str) -> Any:
        return type("Waiter", (), {"wait": lambda self, **_: None})()


def test_batches_of_500_in_order_counted_by_kind():
    client = FakeKinesis()
    messages = list(generate_tweets(1200, bad_ratio=0.1, seed=1))
    kinds = put_records(client, "s", messages)
    assert client.calls == [500, 500, 200]
    assert [e["Data"] for e in client.stored] == [m.value or b"" for m in messages]
    assert sum(kinds.values()) == 1200 and set(kinds) > {"tweet"}


def test_refused_entries_are_put_again_and_reported_where_they_landed():
    client = FakeKinesis(refusals=3)
    landed: dict[str, bytes | None] = {}

    def on_landed(shard: str, sequence: str, message: GeneratedMessage) -> None:
        landed[sequence] = message.value

    messages = list(generate_tweets(10, bad_ratio=0.0, seed=2))
    put_records(client, "s", messages, on_landed=on_landed)
    assert client.calls == [10, 3]
    assert sorted(landed.values()) == sorted(m.value for m in messages)
    assert [e["Data"] for e in client.stored[-3:]] == [m.value for m in messages[:3]]


def test_a_stream_that_keeps_refusing_fails_after_ten_attempts():
    client = FakeKinesis(refusals=100)
    with pytest.raises(SourceUnavailableError, match="Kinesis stream s refused 1 records"):
        put_records(client, "s", generate_tweets(1, bad_ratio=0.0))
    assert client.calls == [1] * 10


def test_an_unkeyed_message_gets_a_placeholder_partition_key():
    client = FakeKinesis()
    put_records(client, "s", [GeneratedMessage(b"", b"{}", 0, "tweet")])
    assert client.stored == [{"Data": b"{}", "PartitionKey": "-"}]


def test_an_outage_is_ridden_out_only_with_patience():
    with pytest.raises(EndpointConnectionError):
        put_records(FakeKinesis(outages=1), "s", generate_tweets(1, bad_ratio=0.0))
    client = FakeKinesis(outages=2)
    assert sum(put_records(client, "s", generate_tweets(4), patience_s=5).values()) == 4


def test_pacing_spreads_the_batches():
    client = FakeKinesis()
    put_records(client, "s", generate_tweets(6, bad_ratio=0.0), rate_per_s=40.0)
    assert client.calls == [4, 2]


def test_a_missing_stream_is_created_once():
    client = FakeKinesis()
    ensure_stream(client, "s", 2)
    ensure_stream(client, "s", 2)
    assert client.created == [("s", 2)]
