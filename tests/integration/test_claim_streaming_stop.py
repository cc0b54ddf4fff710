"""README claim: "Ctrl-C (or SIGTERM) stops it cleanly: the sources stop reading, the batches in
flight are committed, the run summary is printed and the exit status is 0" (measured: "Ctrl-C
1 to 4 s"). The Kafka read's partition watch looks for new partitions every
``--partition_discovery_s``; a stop must not wait for its next look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from deltalake import DeltaTable

from beam_pipelines.feeds.tweets import generate_tweets
from bench.streaming import StreamingProcess, TimedProducer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_UP_S = 120.0


def _rows(uri: str) -> int:
    try:
        return DeltaTable(uri).to_pyarrow_table().num_rows
    except Exception:  # not created yet
        return 0


def test_a_stop_does_not_wait_for_the_next_look_for_partitions(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    out = str(tmp_path / "tweets")
    run = StreamingProcess(
        "beam_pipelines.sentiment",
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={out}",
            f"--dlq={tmp_path / 'dead_letters'}",
            "--max_batch_latency_s=1",
            "--partition_discovery_s=3600",
            "--runner=direct",
        ],
    ).start()
    try:
        TimedProducer(kafka_bootstrap, topic).send(generate_tweets(50, bad_ratio=0.0, seed=4))
        deadline = time.monotonic() + START_UP_S
        while _rows(out) < 50:  # the run is under way: its first look is long done
            assert time.monotonic() < deadline, "the tweets never landed"
            time.sleep(0.2)
    finally:
        stopped = run.stop(timeout_s=60)  # killed (exit -9) if it outlives this
    assert stopped.exit_code == 0, stopped.stderr[-2000:]
    assert "Run summary (stopped on request)" in stopped.stdout
