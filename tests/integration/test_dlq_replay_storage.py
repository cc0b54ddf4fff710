"""``dataplane dlq replay`` on object storage: the tables open with the pipeline's storage flags."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from deltalake import DeltaTable

from beam_pipelines import sentiment
from beam_pipelines.feeds.tweets import generate_tweets
from runners.cli.main import main as dataplane

pytestmark = [pytest.mark.integration]


def _storage(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def _rows(uri: str, storage: dict[str, str]) -> list[dict]:
    return DeltaTable(uri, storage_options=storage).to_pyarrow_table().to_pylist()


def test_replay_of_an_s3_dead_letter_table_uses_the_storage_flags(
    moto_endpoint: str,
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from confluent_kafka import Producer
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    # The endpoint is known only through the flags: the environment holds credentials only,
    # so a table opened without the storage options would go to the real service and fail.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket="replay-lake")
    storage = _storage(moto_endpoint)
    messages = list(generate_tweets(120, bad_ratio=0.05, seed=21))
    topic = new_topic(partitions=2)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n, message in enumerate(messages):
        producer.produce(topic, message.value, message.key, partition=n % 2)
    assert producer.flush(10) == 0
    texts = {json.loads(m.value)["text"] for m in messages[:30] if m.kind == "tweet"}
    real = SentimentIntensityAnalyzer.polarity_scores

    def broken(self: SentimentIntensityAnalyzer, text: str) -> dict[str, float]:
        if text in texts:  # a featurizer bug that hits some tweets
            raise ValueError("bug")
        return real(self, text)

    out, dlq = "s3://replay-lake/tweets", "s3://replay-lake/dead_letters"
    flags = [f"--storage_option={k}={v}" for k, v in storage.items()]
    monkeypatch.setattr(SentimentIntensityAnalyzer, "polarity_scores", broken)
    sentiment.run(
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={out}",
            f"--dlq={dlq}",
            "--bounded",
            *flags,
        ]
    )
    monkeypatch.setattr(SentimentIntensityAnalyzer, "polarity_scores", real)  # the fix
    letters = _rows(dlq, storage)
    poisoned = sum(letter["error_type"] == "PoisonRecord" for letter in letters)
    assert poisoned == len(texts) > 0

    # Half the settings before --, half after: both reach the replay and the pipeline.
    before, after = flags[:2], flags[2:]
    command = ["dlq", "replay", "sentiment", "--from", dlq]
    for flag in before:
        command += ["--storage_option", flag.split("=", 1)[1]]
    assert dataplane([*command, "--", f"--output={out}", "--runner=direct", *after]) == 0

    valid = sum(m.kind == "tweet" for m in messages)
    rows = _rows(out, storage)
    assert len(rows) == len({r["_record_id"] for r in rows}) == valid
    marked = _rows(dlq, storage)
    outcomes = [letter["replay_outcome"] for letter in marked]
    assert outcomes.count("written") == poisoned
    assert sum(o.startswith("failed again: ") for o in outcomes) == len(letters) - poisoned
    (replay_id,) = {letter["replay_id"] for letter in marked}
    failures = _rows(f"{dlq}_replays/{replay_id}", storage)
    assert len(failures) == len(letters) - poisoned
