"""Ctrl-C at any moment of a streaming run's start-up ends it (it used to be lost in imports)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("after_s", [0.3, 2.0])
def test_a_sigint_while_a_streaming_run_starts_ends_it(
    kafka_bootstrap: str, new_topic, tmp_path: Path, after_s: float
) -> None:
    topic = new_topic(partitions=1)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "beam_pipelines.sentiment",
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    try:
        _, stderr = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"a SIGINT {after_s} s after the start did not end the run")
    # 0: stopped cleanly; 130: before it ran; -SIGINT: before Python itself was up.
    assert process.returncode in (0, 130, -signal.SIGINT), stderr[-2000:]
    assert "Traceback" not in stderr
