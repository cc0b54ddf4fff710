"""``--compact_every_s``: pipelines compact their tables as they go; rows and progress stay."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from beam_pipelines import sentiment, telemetry
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.telemetry import generate_telemetry
from beam_pipelines.feeds.tweets import generate_tweets
from bench.streaming import StreamingProcess, TableWatcher, TimedProducer
from tests.integration.test_telemetry_pipeline import (
    GENERATOR_ARGS,
    assert_matches_oracle,
    oracle,
    outputs,
    table_frame,
)

pytestmark = [pytest.mark.integration]

EVERY_COMMIT = "--compact_every_s=0.001"  # any commit after the first is followed by one


def _sentiment(bootstrap: str, topic: str, lake: Path, *extra: str) -> Any:
    return sentiment.run(
        [
            f"--source=kafka://{bootstrap}/{topic}",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            "--bounded",
            "--batch_size=40",  # many small commits, as a streaming run makes
            *extra,
        ]
    )


def _operations(uri: str | Path) -> Counter[str]:
    """How many commits of each kind; appends count only commits that added rows."""
    kinds: Counter[str] = Counter()
    for commit in DeltaTable(str(uri)).history():
        added = int(commit.get("operationMetrics", {}).get("num_added_rows", 0))
        kind = commit["operation"]
        kinds["APPEND" if kind == "WRITE" and added else kind] += 1
    return kinds


def _coordinates(*tables: Path) -> Counter[tuple[str, str]]:
    copies: Counter[tuple[str, str]] = Counter()
    for uri in tables:
        columns = DeltaTable(str(uri)).to_pyarrow_table(columns=["_partition", "_position"])
        copies.update(zip(*columns.to_pydict().values(), strict=True))
    return copies


def test_a_run_compacting_as_it_goes_keeps_every_record_once_and_resumes_after_it(
    kafka_bootstrap: str, new_topic: Any, tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    uri = f"kafka://{kafka_bootstrap}/{topic}"
    publish(uri, generate_tweets(600, bad_ratio=0.1, seed=3), partitions=2)
    first = _sentiment(kafka_bootstrap, topic, tmp_path, EVERY_COMMIT)

    tweets, dead = tmp_path / "tweets", tmp_path / "dead_letters"
    for table in (tweets, dead):
        kinds = _operations(table)
        assert kinds["OPTIMIZE"] >= 1
        assert len(DeltaTable(str(table)).file_uris()) < kinds["APPEND"]
    copies = _coordinates(tweets, dead)
    assert first.records_in == 600 and len(copies) == 600 and set(copies.values()) == {1}

    again = _sentiment(kafka_bootstrap, topic, tmp_path, EVERY_COMMIT)
    assert again.records_in == 0  # resumes after the progress the compacted tables keep
    publish(uri, generate_tweets(200, bad_ratio=0.1, seed=4), partitions=2)
    more = _sentiment(kafka_bootstrap, topic, tmp_path, EVERY_COMMIT)
    copies = _coordinates(tweets, dead)
    assert more.records_in == 200 and len(copies) == 800 and set(copies.values()) == {1}


def test_telemetry_compacts_its_merged_windows_and_appended_tables(tmp_path: Path) -> None:
    messages = list(generate_telemetry(1500, **GENERATOR_ARGS))
    source = tmp_path / "telemetry.parquet"
    publish(f"file://{source}", messages)
    where = outputs(str(tmp_path))
    del where["quality_output"]
    flags = [f"--{name}={uri}" for name, uri in where.items()]
    telemetry.run(
        [
            f"--source=file://{source}",
            "--bounded",
            "--runner=direct",
            "--batch_size=20",
            EVERY_COMMIT,
            *flags,
        ]
    )

    windows = where["output"]
    merges = _operations(windows)
    assert merges["OPTIMIZE"] >= 2
    assert len(DeltaTable(windows).file_uris()) < merges["MERGE"] + 1  # + the creating write
    expected = oracle(messages, size_ms=300_000, period_ms=300_000)
    assert_matches_oracle(table_frame(DeltaTable(windows).to_pyarrow_table()), expected)
    dead = _coordinates(Path(where["dlq"]))
    assert set(dead.values()) == {1}
    assert len(dead) == sum(m.kind not in ("reading", "late") for m in messages)


def test_a_streaming_run_compacts_between_its_commits(
    kafka_bootstrap: str, new_topic: Any, tmp_path: Path
) -> None:
    """The runner sets a DoFn up for every bundle: the schedule must outlive that."""
    topic = new_topic(partitions=2)
    tweets, dead = tmp_path / "tweets", tmp_path / "dead_letters"
    run = StreamingProcess(
        "beam_pipelines.sentiment",
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={tweets}",
            f"--dlq={dead}",
            "--max_batch_latency_s=0.5",
            "--compact_every_s=2",
            "--runner=direct",
        ],
    ).start()
    producer, watcher = (
        TimedProducer(kafka_bootstrap, topic),
        TableWatcher([str(tweets), str(dead)]),
    )
    deadline, seed = time.monotonic() + 120, 10
    try:
        while not _operations_or_none(tweets)["OPTIMIZE"]:  # waves until one was compacted
            assert time.monotonic() < deadline, "no compaction within 120 s"
            seed += 1
            keys = producer.send(generate_tweets(50, bad_ratio=0.1, seed=seed))
            assert watcher.wait_for(keys, timeout_s=120)
    finally:
        stopped = run.stop()
    assert stopped.exit_code == 0, stopped.stderr[-2000:]

    kinds = _operations(tweets)
    assert len(DeltaTable(str(tweets)).file_uris()) < kinds["APPEND"]
    copies = _coordinates(tweets, dead)
    assert copies.keys() == producer.produced_at.keys() and set(copies.values()) == {1}
    again = _sentiment(kafka_bootstrap, topic, tmp_path)
    assert again.records_in == 0  # resumes after the progress the compacted table keeps


def _operations_or_none(uri: Path) -> Counter[str]:
    return _operations(uri) if (uri / "_delta_log").is_dir() else Counter()
