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
