"""A streaming run watched from outside: /metrics scraped while it runs, lineage events after.

The sentiment pipeline runs as a user runs it (``python -m beam_pipelines.sentiment``
without ``--bounded``, ``--metrics_port``, ``--lineage=file:...``) against the real
broker; waves of tweets are produced with their produce time as Kafka timestamp.
Each scrape is compared with what the Delta tables hold, read back independently.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from prometheus_client.parser import text_string_to_metric_families

from beam_pipelines.feeds.tweets import GeneratedMessage, generate_tweets
from bench.streaming import StreamingProcess, TableWatcher, TimedProducer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_UP_S = 120.0  # a cold start on a busy machine imports Beam, VADER and deltalake
SETTLE_S = 60.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _scrape(port: int) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def _wait_for(check: Callable[[], Any], timeout_s: float, every_s: float = 0.5) -> Any:
    """Calls ``check`` until it returns something true; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (urllib.error.URLError, ConnectionError):
            last = None
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"not reached within {timeout_s:.0f} s (last: {last!r})")


def _total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def _now_stamped(messages: Any) -> list[GeneratedMessage]:
    """The messages with their produce time as Kafka timestamp (latency is measured from it)."""
    return [dataclasses.replace(m, timestamp_ms=int(time.time() * 1000)) for m in messages]


def _tables_agree(port: int, tweets: str, letters: str) -> Samples | None:
    """The scrape, once its committed counts equal the rows the two tables hold."""
    _, samples = _scrape(port)
    for table in (tweets, letters):
        if not DeltaTable.is_deltatable(table):
            return None
        rows = DeltaTable(table).to_pyarrow_table().num_rows
        if _total(samples, "dataplane_rows_committed_total", table=table) != rows:
            return None
    return samples


def test_a_streaming_run_can_be_watched_from_prometheus_and_leaves_lineage(
    kafka_bootstrap: str, new_topic: Any, tmp_path: Path, runner_flags: list[str]
) -> None:
    topic = new_topic(partitions=3)
    tweets, letters = str(tmp_path / "tweets"), str(tmp_path / "dead_letters")
    port = _free_port()
    events_file = tmp_path / "lineage.jsonl"
    producer = TimedProducer(kafka_bootstrap, topic)
    watcher = TableWatcher([tweets, letters])
    run = StreamingProcess(
        "beam_pipelines.sentiment",
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={tweets}",
            f"--dlq={letters}",
            "--max_batch_latency_s=1",
            f"--metrics_port={port}",
            f"--lineage=file:{events_file}",
            "--lineage_interval_s=1",
            *runner_flags,
        ],
    ).start()
    try:
        _wait_for(lambda: _scrape(port), START_UP_S)  # /metrics answers while it runs
        first_sent_at = time.time()
        first = producer.send(_now_stamped(generate_tweets(300, bad_ratio=0.05, seed=21)))
        assert watcher.wait_for(first, timeout_s=START_UP_S), "the first wave never landed"
        after_first = _wait_for(lambda: _tables_agree(port, tweets, letters), SETTLE_S)

        second = producer.send(_now_stamped(generate_tweets(200, bad_ratio=0.05, seed=22)))
        assert watcher.wait_for(second, timeout_s=START_UP_S), "the second wave never landed"
        after_second = _wait_for(lambda: _tables_agree(port, tweets, letters), SETTLE_S)
        # Lag per partition comes down to 0 once every record was read.
        caught_up = _wait_for(
            lambda: (
                (s := _scrape(port)[1])
                and len([k for k in s if k[0] == "dataplane_source_lag_records"]) == 3
                and _total(s, "dataplane_source_lag_records") == 0
                and s
            ),
            SETTLE_S,
        )
        text, _ = _scrape(port)
        elapsed_s = time.time() - first_sent_at
    finally:
        stopped = run.stop()
    assert stopped.exit_code == 0, stopped.stderr[-2000:]
    print("\n".join(line for line in text.splitlines() if line.startswith("dataplane_")))

    # Records read, per partition: what was produced to each, and it moved with each wave.
    produced = Counter(partition for partition, _ in [*first, *second])
    for partition, count in produced.items():
        read = _total(caught_up, "dataplane_records_read_total", partition=partition)
        assert read == count, (partition, read, count)
    assert _total(after_first, "dataplane_records_read_total") == len(first)
    assert _total(after_second, "dataplane_records_read_total") == len(first) + len(second)

    # Rows and dead letters committed, by table and reason: what the tables hold.
    letters_table = DeltaTable(letters).to_pyarrow_table()
    reasons = Counter(letters_table.column("error_type").to_pylist())
    for reason, count in reasons.items():
        scraped = _total(caught_up, "dataplane_dead_letters_committed_total", reason=reason)
        assert scraped == count, (reason, scraped, count)
    for table in (tweets, letters):
        delta = DeltaTable(table)
        rows = delta.to_pyarrow_table().num_rows
        assert _total(caught_up, "dataplane_rows_committed_total", table=table) == rows
        # Every commit made one table version (0, 1, ...).
        assert _total(caught_up, "dataplane_commits_total", table=table) == delta.version() + 1
        timed = _total(caught_up, "dataplane_commit_duration_seconds_count", table=table)
        assert timed == delta.version() + 1
        # Every committed row's latency was observed, each within the time since it was sent.
        observed = _total(caught_up, "dataplane_commit_latency_seconds_count", table=table)
        assert observed == rows
        latency_sum = _total(caught_up, "dataplane_commit_latency_seconds_sum", table=table)
        assert 0 < latency_sum <= rows * elapsed_s
    assert len(produced) == 3
    assert _total(caught_up, "dataplane_watermark_delay_seconds") >= 0
    assert [k for k in caught_up if k[0] == "dataplane_source_watermark_seconds"]

    # Lineage: START, RUNNING while it ran, COMPLETE with what the tables hold.
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    kinds = [event["eventType"] for event in events]
    assert kinds[0] == "START" and kinds[-1] == "COMPLETE" and "RUNNING" in kinds, kinds
    assert set(kinds) == {"START", "RUNNING", "COMPLETE"}
    assert len({event["run"]["runId"] for event in events}) == 1
    complete = events[-1]
    assert complete["job"]["facets"]["jobType"]["processingType"] == "STREAMING"
    (source,) = complete["inputs"]
    host, _, broker_port = kafka_bootstrap.split(",")[0].rpartition(":")
    assert (source["namespace"], source["name"]) == (f"kafka://{host}:{broker_port}", topic)
    assert source["facets"]["schema"]["fields"]
    for output in complete["outputs"]:
        rows = DeltaTable(output["name"]).to_pyarrow_table().num_rows
        assert output["outputFacets"]["outputStatistics"]["rowCount"] == rows
