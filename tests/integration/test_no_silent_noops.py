"""Runs that would do nothing fail before they start, naming what is wrong."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = [pytest.mark.integration]


def _sentiment(*flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "beam_pipelines.sentiment", *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def _topics(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)


def test_an_unknown_topic_is_an_error_naming_it_and_is_not_created(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topic = f"misspelt-{uuid.uuid4().hex[:8]}"
    ran = _sentiment(
        f"--source=kafka://{kafka_bootstrap}/{topic}",
        f"--output={tmp_path}/out",
        f"--dlq={tmp_path}/dlq",
        "--bounded",
    )
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert f"--source: Kafka topic '{topic}' does not exist" in ran.stderr
    assert "Traceback" not in ran.stderr
    assert topic not in _topics(kafka_bootstrap)
    assert not (tmp_path / "out").exists()

    # Without the check before the run, the read's own planning says the same.
    ran = _sentiment(
        f"--source=kafka://{kafka_bootstrap}/{topic}",
        f"--output={tmp_path}/out",
        f"--dlq={tmp_path}/dlq",
        "--bounded",
        "--source_timeout_s=0",
    )
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert f"error: topic: Kafka topic '{topic}' is not readable" in ran.stderr
    assert topic not in _topics(kafka_bootstrap)


def test_the_generator_spelling_runs_with_its_values_not_the_defaults(tmp_path) -> None:
    """``--no-resume --batch-size 100`` used to warn six times and run with the defaults."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "1", "text": "good", "created_at": "2026-01-01T00:00:00Z"}\n')
    flags = [f"--source=file://{source}", f"--output={tmp_path}/out", f"--dlq={tmp_path}/dlq"]
    command = [sys.executable, "-m", "beam_pipelines.sentiment", *flags, "--bounded"]
    ran = subprocess.run(
        [*command, "--batch-size", "0"], capture_output=True, text=True, timeout=120, check=False
    )
    # 0 is not a batch size: refused, which shows the hyphenated flag reached the sink options.
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert "--batch_size" in ran.stderr and "Traceback" not in ran.stderr
    ran = subprocess.run(
        [*command, "--batch-sise", "10"], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 2 and "--batch-sise: no such flag" in ran.stderr


def test_tables_ahead_of_a_recreated_topic_stop_the_run_naming_it(tmp_path: Path) -> None:
    """A broker that kept its topics in memory restarted: the tables' offsets do not exist."""
    from confluent_kafka import Producer

    from runners.local.broker import LocalKafkaBroker
    from transforms.sources.kafka_admin import ensure_topic

    def fill(bootstrap: str, count: int) -> None:
        ensure_topic(bootstrap, "tweets", partitions=1)
        producer = Producer({"bootstrap.servers": bootstrap})
        for n in range(count):
            producer.produce("tweets", f'{{"id": "{n}"}}'.encode(), partition=0)
        assert producer.flush(15) == 0

    lake = [f"--output={tmp_path}/out", f"--dlq={tmp_path}/dlq", "--bounded"]
    with LocalKafkaBroker() as first:
        fill(first.bootstrap_servers, 30)
        ran = _sentiment(f"--source=kafka://{first.bootstrap_servers}/tweets", *lake)
        assert ran.returncode == 0, ran.stderr[-2000:]
    with LocalKafkaBroker() as second:
        fill(second.bootstrap_servers, 10)
        ran = _sentiment(f"--source=kafka://{second.bootstrap_servers}/tweets", *lake)
    assert ran.returncode == 2, ran.stderr[-2000:]
    assert "error: topic: the output tables record offset 29 of tweets[0] as committed, but " in (
        ran.stderr
    )
    assert "that partition ends at offset 10" in ran.stderr, ran.stderr[-3000:]
