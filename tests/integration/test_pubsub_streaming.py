"""Pub/Sub streaming on the local runner (Beam's native read) against the emulator.

The sentiment pipeline runs in a subprocess, as a user starts it; what it did is
read back from the Delta tables and the subscription. The local runner
acknowledges a message when it pulls it (see ``beam_pipelines/launch/local_streaming.py``,
defect 6): a stop (SIGINT) commits everything pulled, a kill loses what was
pulled and not yet committed (measured by ``bench/pubsub_guarantee.py``). Rows
are identified by message id, or by the ``id_label`` attribute: a message
published again with the same id lands once, in one run and across runs.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from beam_pipelines.feeds.tweets import generate_tweets
from bench.streaming import StreamingProcess, TableWatcher
from runners.local.gcp import EmulatorTopic

pytestmark = pytest.mark.integration

PROJECT = "test-project"  # Beam's project-id rule: at least 6 characters
LAND_TIMEOUT_S = 30.0
ACK_DEADLINE_S = 10  # the shortest Pub/Sub allows: messages leased and not acked come back


class _Topic(EmulatorTopic):
    """A topic with one subscription on the emulator; publishes tweets, drains what is left."""

    def __init__(self) -> None:
        super().__init__(PROJECT, ack_deadline_s=ACK_DEADLINE_S)
        self._tweets = (m.value for m in generate_tweets(10_000, bad_ratio=0.0, seed=11))

    def publish(self, count: int = 0, *, uids: Sequence[str] = ()) -> list[str]:
        """Publishes ``count`` new tweets, or one per ``uids`` (attribute ``uid``); returns ids."""
        attributes = [{"uid": uid} for uid in uids] or [{} for _ in range(count)]
        return super().publish((next(self._tweets) or b"", attrs) for attrs in attributes)

    def left_over(self) -> int:
        """How many messages are still to be delivered (pulled and acknowledged here)."""
        return self.drain()


def _sentiment(source: str, lake: Path, *flags: str) -> StreamingProcess:
    return StreamingProcess(
        "beam_pipelines.sentiment",
        [
            "--runner=direct",
            f"--source={source}",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            "--progress_interval_s=1",
            *(flags or ["--max_batch_latency_s=2"]),
        ],
    ).start()


def _keys(positions: list[str]) -> list[tuple[str, str]]:
    return [("", p) for p in positions]  # (partition, position): no ordering key


def _stop(run: StreamingProcess) -> None:
    stopped = run.stop(timeout_s=30)
    assert stopped.exit_code == 0, stopped.stderr[-2000:]


def test_published_messages_land_while_it_runs_and_a_stop_exits_0(pubsub_emulator, tmp_path):
    topic = _Topic()
    watcher = TableWatcher([str(tmp_path / "tweets"), str(tmp_path / "dead_letters")])
    run = _sentiment(f"pubsub://{topic.subscription}", tmp_path)
    try:
        first = topic.publish(30)
        assert watcher.wait_for(_keys(first), timeout_s=LAND_TIMEOUT_S + 20)  # + start-up
        second = topic.publish(20)
        assert watcher.wait_for(_keys(second), timeout_s=LAND_TIMEOUT_S)
        assert run.running()
        _stop(run)
    finally:
        run.kill()
    watcher.poll()
    assert watcher.copies == Counter(_keys(first + second))  # each message once
    assert topic.left_over() == 0


def test_id_label_repeats_land_once_in_a_run_and_after_a_kill(pubsub_emulator, tmp_path):
    """Republished ids are dropped by the read (same run) and by the sink (a later run).

    The emulator delivers in publish order, so once a message published after the
    repeats has landed, the repeats were pulled; ``left_over() == 0`` checks it.
    """
    topic = _Topic()
    source = f"pubsub://{topic.subscription}?id_label=uid"
    watcher = TableWatcher([str(tmp_path / "tweets"), str(tmp_path / "dead_letters")])
    uids = [f"u{n}" for n in range(30)]
    run = _sentiment(source, tmp_path)
    try:
        topic.publish(uids=uids[:20])
        assert watcher.wait_for(_keys(uids[:20]), timeout_s=LAND_TIMEOUT_S + 20)
        topic.publish(uids=uids[:10])  # repeats in the same run
        topic.publish(uids=uids[20:25])
        assert watcher.wait_for(_keys(uids[:25]), timeout_s=LAND_TIMEOUT_S)
    finally:
        run.kill()  # SIGKILL: committed rows stay, nothing is committed twice
    again = _sentiment(source, tmp_path)
    try:
        topic.publish(uids=uids[10:20])  # repeats of rows a killed run committed
        topic.publish(uids=uids[25:])
        assert watcher.wait_for(_keys(uids), timeout_s=LAND_TIMEOUT_S + 20)
        _stop(again)
    finally:
        again.kill()
    watcher.poll()
    assert watcher.copies == Counter(_keys(uids))
    assert topic.left_over() == 0


def test_a_kill_loses_what_was_pulled_and_not_yet_committed(pubsub_emulator, tmp_path):
    """The documented limit: the local runner acknowledges a message when it pulls it.

    250 messages; batches of 100 rows are committed at once, the last 50 wait for
    the batch latency (60 s) when the run is killed. Those 50 were acknowledged:
    past the ack deadline the subscription delivers none of them again.
    """
    topic = _Topic()
    published = topic.publish(250)
    watcher = TableWatcher([str(tmp_path / "tweets"), str(tmp_path / "dead_letters")])
    run = _sentiment(
        f"pubsub://{topic.subscription}", tmp_path, "--batch_size=100", "--max_batch_latency_s=60"
    )
    try:
        deadline = time.monotonic() + LAND_TIMEOUT_S + 20
        while sum(watcher.copies.values()) < 200 and time.monotonic() < deadline:
            watcher.poll()
            time.sleep(0.1)
    finally:
        run.kill()
    watcher.poll()
    committed = set(watcher.copies)
    assert len(committed) == 200 and committed <= set(_keys(published))
    assert _delivered_again_within(topic, ACK_DEADLINE_S + 3) == 0  # 50 acked, never committed


def _delivered_again_within(topic: _Topic, seconds: float) -> int:
    """Messages the subscription delivers within ``seconds`` (leases of a killed reader end)."""
    deadline, delivered = time.monotonic() + seconds, 0
    while time.monotonic() < deadline and not delivered:
        delivered = topic.left_over()
    return delivered
