"""What the local runner guarantees for Pub/Sub: acknowledgements, kills, id_label.

    python -m bench.pubsub_guarantee --kills 5 --rate 100 --out /tmp/pubsub_guarantee.json

Runs ``python -m beam_pipelines.sentiment`` streaming on the local runner against
the Pub/Sub emulator (started here unless ``PUBSUB_EMULATOR_HOST`` is set), with
subscriptions whose ack deadline is 10 s, and measures:

(0) **latency**: publish→visible in the tables while a run goes on, and how long a
    SIGINT takes to end it (exit code 0 expected).
(a) **ack before commit**: with batches of 100 rows and a 60 s batch wait, publish
    250 tweets, SIGKILL the run once 200 rows are committed (50 wait in a batch),
    wait out the ack deadline and count what the subscription delivers again.
(b) **kills**: tweets are published at ``--rate`` per second while runs are started
    and SIGKILLed at a random moment within two batch latencies after each run's
    first commit; then a run that outlasts the ack deadline drains the rest and is
    stopped with SIGINT. Lost: published, never in a table, not left to deliver.
    Repeated: rows beyond the first per message id.
(c) **id_label**: tweets republished with the same ``uid`` attribute in the same run
    and after a restart, with ``?id_label=uid``; then the same without id_label.

Exits 1 when a figure contradicts the guarantee the README states.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beam_pipelines.feeds.tweets import generate_tweets
from bench.streaming import StreamingProcess, TableWatcher, percentile
from runners.local.gcp import EmulatorTopic

PROJECT = "bench-project"
ACK_DEADLINE_S = 10
START_TIMEOUT_S = 120.0


class _Feed(EmulatorTopic):
    """A topic with one subscription (10 s ack deadline); publishes tweets, remembers ids."""

    def __init__(self) -> None:
        super().__init__(PROJECT, ack_deadline_s=ACK_DEADLINE_S)
        self.published_at: dict[str, float] = {}  # message id -> time.monotonic()

    def publish(
        self, count: int = 0, *, uids: Sequence[str] = (), again: bool = False
    ) -> list[str]:
        """``count`` new tweets, or one per ``uids`` (attribute ``uid``; ``again``: the
        same tweet as the first publish of that uid); returns their message ids."""
        attributes = [{"uid": u} for u in uids] or [{} for _ in range(count)]
        ids = super().publish((_tweet_for(a.get("uid"), again), a) for a in attributes)
        now = time.monotonic()
        self.published_at.update((i, now) for i in ids)
        return ids

    def left_over(self) -> int:
        """Pulls and acknowledges whatever is still to be delivered; returns how many."""
        return self.drain()


def _tweets() -> Iterator[bytes]:
    for message in generate_tweets(10_000_000, bad_ratio=0.0, seed=5):
        yield message.value or b""


_TWEETS = _tweets()  # one sequence for every feed: no two publishes share a tweet by chance
_BY_UID: dict[str, bytes] = {}


def _tweet_for(uid: str | None, again: bool) -> bytes:
    """A new tweet, or (``again``) the one first published under ``uid``."""
    if uid is not None and again:
        return _BY_UID[uid]
    value = next(_TWEETS)
    if uid is not None:
        _BY_UID[uid] = value
    return value


@dataclass
class _Lake:
    root: Path
    runs: list[StreamingProcess] = field(default_factory=list)

    @property
    def tables(self) -> list[str]:
        return [str(self.root / "tweets"), str(self.root / "dead_letters")]

    def start(self, source: str, *extra: str) -> StreamingProcess:
        run = StreamingProcess(
            "beam_pipelines.sentiment",
            [
                "--runner=direct",
                f"--source={source}",
                f"--output={self.root / 'tweets'}",
                f"--dlq={self.root / 'dead_letters'}",
                *extra,
            ],
        ).start()
        self.runs.append(run)
        return run

    def rows(self) -> list[dict[str, Any]]:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        rows: list[dict[str, Any]] = []
        for uri in self.tables:
            try:
                table = DeltaTable(uri)
            except TableNotFoundError:
                continue
            columns = ["_position", "id"] if uri.endswith("tweets") else ["_position"]
            rows += table.to_pyarrow_table(columns=columns).to_pylist()
        return rows

    def kill_all(self) -> None:
        for run in self.runs:
            run.kill()


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.1)


def ack_before_commit(lake: _Lake) -> dict[str, int]:
    """(a): 250 published; killed with 200 committed and 50 in a held batch."""
    feed = _Feed()
    published = feed.publish(250)
    run = lake.start(
        f"pubsub://{feed.subscription}", "--batch_size=100", "--max_batch_latency_s=60"
    )
    _wait(lambda: len(lake.rows()) >= 200, START_TIMEOUT_S, "200 rows committed")
    run.kill()
    committed = len(lake.rows())
    time.sleep(ACK_DEADLINE_S + 3)  # leases of anything pulled and not acknowledged run out
    again = feed.left_over()
    return {
        "published": len(published),
        "committed_before_kill": committed,
        "delivered_again_after_ack_deadline": again,
        "acked_not_committed_lost": len(published) - committed - again,
    }


def _publish_steadily(feed: _Feed, rate: float, stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        every = 1.0 / rate
        while not stop.is_set():
            feed.publish(max(1, int(rate / 10)))
            time.sleep(max(0.0, every * max(1, int(rate / 10)) - 0.005))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def kills(lake: _Lake, count: int, rate: float, latency_s: float, seed: int) -> dict[str, Any]:
    """(b): ``count`` SIGKILLs at random moments after a run's first commit, then a drain."""
    rng, feed, stop = random.Random(seed), _Feed(), threading.Event()
    source, latency = f"pubsub://{feed.subscription}", f"--max_batch_latency_s={latency_s}"
    publisher = _publish_steadily(feed, rate, stop)
    killed_at: list[float] = []
    delays: list[float] = []  # after each run's first commit
    try:
        for _ in range(count):
            before = len(lake.rows())
            run = lake.start(source, latency)
            _wait(lambda b=before: len(lake.rows()) > b, START_TIMEOUT_S, "a run's first commit")
            delay = rng.uniform(0.0, 2 * latency_s)
            time.sleep(delay)
            run.kill()
            killed_at.append(time.monotonic())
            delays.append(round(delay, 2))
    finally:
        stop.set()
        publisher.join()
    drain = lake.start(source, latency)
    _wait_until_quiet(lake, quiet_s=latency_s + 3, at_least_s=ACK_DEADLINE_S + 5)
    stopped = drain.stop(timeout_s=60)
    figures = _kill_figures(feed, lake, killed_at, stopped.exit_code)
    return {**figures, "rate_per_s": rate, "kill_after_first_commit_s": delays}


def _wait_until_quiet(lake: _Lake, *, quiet_s: float, at_least_s: float) -> None:
    """Until the tables have not grown for ``quiet_s``, and ``at_least_s`` has passed."""
    started = last_change = time.monotonic()
    rows = len(lake.rows())
    while time.monotonic() - started < at_least_s or time.monotonic() - last_change < quiet_s:
        time.sleep(0.5)
        now_rows = len(lake.rows())
        if now_rows != rows:
            rows, last_change = now_rows, time.monotonic()


def _kill_figures(
    feed: _Feed, lake: _Lake, killed_at: list[float], drain_exit: int
) -> dict[str, Any]:
    copies = Counter(r["_position"] for r in lake.rows())
    left = feed.left_over()
    lost = [i for i in feed.published_at if i not in copies]
    # A message is pulled by the run going on when it is published, or by the next one.
    per_kill = Counter(
        next((n for n, at in enumerate(killed_at) if feed.published_at[i] <= at), len(killed_at))
        for i in lost
    )
    return {
        "published": len(feed.published_at),
        "kills": len(killed_at),
        "rows": sum(copies.values()),
        "distinct_messages_in_tables": len(copies),
        "repeated_rows": sum(n - 1 for n in copies.values()),
        "left_undelivered": left,
        "lost": len(lost) - left,
        "lost_per_kill": [per_kill.get(n, 0) for n in range(len(killed_at))],
        "lost_after_the_last_kill": per_kill.get(len(killed_at), 0),
        "drain_run_exit_code": drain_exit,
    }


def id_label(lake: _Lake, repeats: int) -> dict[str, Any]:
    """(c): repeats with the same ``uid`` in one run, after a restart, and without id_label."""
    feed = _Feed()
    uids = [f"u{n}" for n in range(repeats)]
    labelled = f"pubsub://{feed.subscription}?id_label=uid"
    watcher = TableWatcher(lake.tables)
    run = lake.start(labelled)
    feed.publish(uids=uids)
    _landed(watcher, uids)
    feed.publish(uids=uids, again=True)
    feed.publish(uids=["end-1"])  # the emulator delivers in order: the repeats were read
    _landed(watcher, ["end-1"])
    first_exit = run.stop(timeout_s=60).exit_code
    in_run = _repeated_ids(lake)
    run = lake.start(labelled)
    feed.publish(uids=uids, again=True)
    feed.publish(uids=["end-2"])
    _landed(watcher, ["end-2"])
    second_exit = run.stop(timeout_s=60).exit_code
    across = _repeated_ids(lake)
    left = feed.left_over()
    plain = _without_id_label(lake, repeats)
    return {
        "repeats_published_per_case": repeats,
        "rows_repeated_same_run": in_run,
        "rows_repeated_after_restart": across - in_run,
        "left_undelivered": left,
        "exit_codes": [first_exit, second_exit],
        "without_id_label_rows_repeated": plain,
    }


def _without_id_label(lake: _Lake, repeats: int) -> int:
    feed = _Feed()
    uids = [f"p{n}" for n in range(repeats)]
    watcher = TableWatcher(lake.tables)
    before = _repeated_ids(lake)
    run = lake.start(f"pubsub://{feed.subscription}")
    feed.publish(uids=uids)
    ids = feed.publish(uids=uids, again=True)
    _landed(watcher, ids)
    run.stop(timeout_s=60)
    return _repeated_ids(lake) - before


def latency(lake: _Lake, latency_s: float, waves: int = 10, size: int = 20) -> dict[str, Any]:
    """Publish→visible for ``waves`` of ``size`` tweets a second apart; then the stop time."""
    feed = _Feed()
    watcher = TableWatcher(lake.tables)
    run = lake.start(f"pubsub://{feed.subscription}", f"--max_batch_latency_s={latency_s}")
    _landed(watcher, feed.publish(size))  # the run is up
    waits: list[float] = []
    for _ in range(waves):
        time.sleep(1.0)
        at = time.time()
        ids = feed.publish(size)
        _landed(watcher, ids)
        waits += [watcher.seen_at[("", i)] - at for i in ids]
    stopped = run.stop(timeout_s=60)
    return {
        "messages": len(waits),
        "publish_to_visible_p50_s": round(percentile(waits, 0.5), 2),
        "publish_to_visible_max_s": round(max(waits), 2),
        "sigint_exit_code": stopped.exit_code,
        "sigint_to_exit_s": round(stopped.stop_s, 1),
    }


def _landed(watcher: TableWatcher, positions: Sequence[str]) -> None:
    if not watcher.wait_for([("", p) for p in positions], timeout_s=START_TIMEOUT_S):
        raise TimeoutError(f"{len(positions)} messages not in the tables")


def _repeated_ids(lake: _Lake) -> int:
    """Rows of the output table beyond the first per tweet id (the tweet's own id)."""
    copies = Counter(r["id"] for r in lake.rows() if "id" in r)
    return sum(n - 1 for n in copies.values())


def _verdict(figures: dict[str, Any]) -> list[str]:
    problems = []
    if figures["latency"]["sigint_exit_code"] != 0:
        problems.append("a SIGINT did not end the run with exit 0")
    if figures["kills"]["repeated_rows"]:
        problems.append("a kill repeated rows")
    if figures["kills"]["drain_run_exit_code"] != 0:
        problems.append("the drain run's SIGINT did not exit 0")
    labelled = figures["id_label"]
    if labelled["rows_repeated_same_run"] or labelled["rows_repeated_after_restart"]:
        problems.append("id_label repeats landed twice")
    if labelled["exit_codes"] != [0, 0]:
        problems.append("a SIGINT did not exit 0")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pubsub_guarantee")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second in (b)")
    parser.add_argument("--repeats", type=int, default=100, help="republished ids in (c)")
    parser.add_argument("--max-batch-latency-s", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="also write the figures here as JSON")
    args = parser.parse_args(argv)
    with ExitStack() as stack:
        if not os.environ.get("PUBSUB_EMULATOR_HOST"):
            from runners.local.gcp import LocalPubSubEmulator

            emulator = stack.enter_context(LocalPubSubEmulator(start_timeout_s=60))
            os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        figures: dict[str, Any] = {"max_batch_latency_s": args.max_batch_latency_s}

        def killed(lake: _Lake) -> dict[str, Any]:
            return kills(lake, args.kills, args.rate, args.max_batch_latency_s, args.seed)

        def labelled(lake: _Lake) -> dict[str, Any]:
            return id_label(lake, args.repeats)

        def timed(lake: _Lake) -> dict[str, Any]:
            return latency(lake, args.max_batch_latency_s)

        for name, measure in (
            ("latency", timed),
            ("ack_before_commit", ack_before_commit),
            ("kills", killed),
            ("id_label", labelled),
        ):
            lake = _Lake(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            stack.callback(lake.kill_all)
            started = time.monotonic()
            figures[name] = measure(lake)
            figures[name]["took_s"] = round(time.monotonic() - started, 1)
            print(f"{name}: {json.dumps(figures[name])}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    problems = _verdict(figures)
    for problem in problems:
        print(f"contradicts the stated guarantee: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
