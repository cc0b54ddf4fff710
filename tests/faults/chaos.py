"""Fault trials: kill -9 the pipeline while a producer writes, restart, and check exactly once.

Each trial starts the sentiment pipeline (bounded: it reads what the source holds
at its start) as a separate process and kills it with SIGKILL: either after a
random delay, or the moment a new data file appears in the output table (the
commit has begun, its log entry is not written yet). The next trial resumes from
the tables. When the producer is done, runs without faults drain the rest. Then
every produced message must be in the output or dead-letter table exactly once,
with its content, and the consumer-group offsets must never have run ahead of the
tables.

    python -m tests.faults.chaos --kind kafka --trials 30 --records 20000
    make chaos
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from beam_pipelines.feeds.tweets import GeneratedMessage, generate_tweets

__all__ = ["ChaosReport", "KafkaFeed", "KinesisFeed", "Trial", "main", "run_trials"]

Coordinates = tuple[str, str]  # (partition, position)


class Feed:
    """A producer thread writing generated tweets to a source, remembering where each landed.

    ``rate_per_s`` paces it; :meth:`finish` stops it early.
    """

    uri: str
    stream: str  # the topic or stream written to

    def __init__(self, records: int, rate_per_s: float, seed: int) -> None:
        self.records, self.rate_per_s, self.seed = records, rate_per_s, seed
        self.produced: dict[Coordinates, bytes | None] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._finished = threading.Event()
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Stops producing after the current batch, then joins (see :meth:`join`)."""
        self._finished.set()
        self.join()

    def join(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise self.error

    def group_offsets(self) -> dict[str, int]:
        """Partition -> committed consumer-group offset (Kafka only)."""
        return {}

    def _messages(self) -> Iterator[GeneratedMessage]:
        """The generated messages, until :meth:`finish` is called."""
        return itertools.takewhile(lambda _: not self._finished.is_set(), self._generate())

    def _generate(self) -> Iterable[GeneratedMessage]:
        return generate_tweets(self.records, bad_ratio=0.05, seed=self.seed)

    def _landed(self, partition: str, position: str, message: GeneratedMessage) -> None:
        with self._lock:
            self.produced[(partition, position)] = message.value or b""

    def _run(self) -> None:
        try:
            self._produce()
        except BaseException as err:  # reported by join()
            self.error = err

    def _produce(self) -> None:
        raise NotImplementedError


class KafkaFeed(Feed):
    """Produces to a topic on a broker; ``produced`` is keyed by (partition, offset)."""

    def __init__(self, bootstrap: str, *, partitions: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from transforms.sources.kafka_admin import ensure_topic

        self.topic = self.stream = f"chaos-{uuid.uuid4().hex[:8]}"
        self.group = f"{self.topic}-group"
        self.bootstrap, self.partitions = bootstrap, partitions
        ensure_topic(bootstrap, self.topic, partitions=partitions)
        self.uri = f"kafka://{bootstrap}/{self.topic}?group={self.group}"

    def _produce(self) -> None:
        from beam_pipelines.feeds.kafka import produce

        produce(
            self.bootstrap,
            self.topic,
            self._messages(),
            partitions=self.partitions,
            rate_per_s=self.rate_per_s,
            on_landed=self._landed,
        )

    def group_offsets(self) -> dict[str, int]:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": self.group})
        try:
            metadata = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
            tps = [TopicPartition(self.topic, p) for p in metadata.partitions]
            return {str(tp.partition): tp.offset for tp in consumer.committed(tps, timeout=10)}
        finally:
            consumer.close()


class KinesisFeed(Feed):
    """Puts records to a stream; ``produced`` is keyed by (shard id, sequence number).

    Puts are retried for up to a minute while the endpoint is down (a streaming trial
    stops it).
    """

    def __init__(self, endpoint: str, *, shards: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from beam_pipelines.feeds.kinesis import ensure_stream
        from transforms.sources.kinesis import kinesis_client

        self.stream = f"chaos-{uuid.uuid4().hex[:8]}"
        self._client = kinesis_client("us-east-1", endpoint)
        ensure_stream(self._client, self.stream, shards)
        self.uri = f"kinesis://{self.stream}?endpoint={endpoint}&region=us-east-1"

    def _produce(self) -> None:
        from beam_pipelines.feeds.kinesis import put_records

        put_records(
            self._client,
            self.stream,
            self._messages(),
            rate_per_s=self.rate_per_s,
            patience_s=60,
            on_landed=self._landed,
        )


@dataclass
class Trial:
    """One start of the pipeline and what became of it."""

    number: int
    mode: str  # "random" or "commit"
    outcome: str = "finished"  # "killed", "killed in a commit" or "finished"
    ran_s: float = 0.0
    versions_added: int = 0
    first_commit_s: float | None = None  # from start to the first new table version
    offsets_ok: bool = True


@dataclass
class ChaosReport:
    """All trials of one source kind and the final check."""

    kind: str
    trials: list[Trial] = field(default_factory=list)
    produced: int = 0
    rows: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_content: int = 0
    drain_runs: int = 0
    last_run_read: int | None = None  # records the last drain run read: 0 when resume is exact

    @property
    def exactly_once(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.wrong_content == 0
            and all(t.offsets_ok for t in self.trials)
        )


class _Lake:
    def __init__(self, root: Path) -> None:
        self.out, self.dlq = root / "out", root / "dlq"

    def versions(self) -> int:
        return sum(
            len(list((t / "_delta_log").glob("*.json")))
            for t in (self.out, self.dlq)
            if (t / "_delta_log").is_dir()
        )

    def data_files(self) -> set[str]:
        return {str(p) for t in (self.out, self.dlq) if t.is_dir() for p in t.glob("*.parquet")}

    def referenced(self) -> set[str]:
        from deltalake import DeltaTable

        found: set[str] = set()
        for table in (self.out, self.dlq):
            # A kill inside a table's first commit leaves a log without a version: no
            # table yet, and none of its data files referenced.
            if any((table / "_delta_log").glob("*.json")):
                found |= {Path(u).name for u in DeltaTable(str(table)).file_uris()}
        return found


def _records_read(log: Path, offset: int) -> int | None:
    """The "records in" of the run summary written to ``log`` after ``offset``."""
    text = log.read_bytes()[offset:].decode("utf-8", "replace")
    for line in reversed(text.splitlines()):
        if "records in" in line:
            digits = "".join(ch for ch in line.split("records in", 1)[1] if ch.isdigit())
            return int(digits) if digits else None
    return None


def _pipeline(feed: Feed, lake: _Lake, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "beam_pipelines.sentiment",
        f"--source={feed.uri}",
        f"--output={lake.out}",
        f"--dlq={lake.dlq}",
        "--bounded",
        "--batch_size=250",
        "--runner=direct",
    ]
    with log.open("ab") as sink:
        return subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)


def _one_trial(
    number: int, feed: Feed, lake: _Lake, log: Path, rng: random.Random, window: tuple[float, float]
) -> Trial:
    mode = "commit" if number % 2 == 0 else "random"
    trial = Trial(number, mode)
    versions, files = lake.versions(), lake.data_files()
    kill_at = time.monotonic() + rng.uniform(*window)
    started = time.monotonic()
    process = _pipeline(feed, lake, log)
    new_files: set[str] = set()
    while process.poll() is None:
        now = time.monotonic()
        if trial.first_commit_s is None and lake.versions() > versions:
            trial.first_commit_s = now - started
        new_files = lake.data_files() - files
        if (mode == "commit" and new_files) or (mode == "random" and now >= kill_at):
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            trial.outcome = "killed"
            break
        if mode == "commit" and now - started > 4 * window[1]:
            mode = trial.mode = "random"  # nothing to commit this time: fall back to the clock
        time.sleep(0.002)
    trial.ran_s = time.monotonic() - started
    if trial.outcome == "killed" and new_files - lake.referenced():
        trial.outcome = "killed in a commit"  # data files written, log entry not
    trial.versions_added = lake.versions() - versions
    if trial.first_commit_s is None and trial.versions_added:
        trial.first_commit_s = trial.ran_s
    trial.offsets_ok = _offsets_behind_tables(feed, lake)
    return trial


def _offsets_behind_tables(feed: Feed, lake: _Lake) -> bool:
    """Consumer-group offsets never ahead of what the tables hold."""
    from transforms.checkpoint.log import ResumeFrom, TableRef
    from transforms.deadletter import dead_letter_app_id

    group = feed.group_offsets()
    if not group:
        return True
    tables = (
        TableRef(str(lake.out), "sentiment"),
        TableRef(str(lake.dlq), dead_letter_app_id("sentiment")),
    )
    frontiers = ResumeFrom(tables).frontiers("kafka", feed.stream)
    return all(
        offset < 0 or (p in frontiers and offset <= int(frontiers[p]) + 1)
        for p, offset in group.items()
    )


def _drain(feed: Feed, lake: _Lake, log: Path, report: ChaosReport) -> None:
    """Runs without faults until a run finds nothing new (at most 4 runs)."""
    for _ in range(4):
        before, offset = lake.versions(), log.stat().st_size if log.exists() else 0
        process = _pipeline(feed, lake, log)
        if process.wait() != 0:
            raise RuntimeError(f"a drain run failed; see {log}")
        report.drain_runs += 1
        report.last_run_read = _records_read(log, offset)
        if lake.versions() == before:
            return


def _verify(feed: Feed, lake: _Lake, report: ChaosReport) -> None:
    from deltalake import DeltaTable

    out = DeltaTable(str(lake.out)).to_pyarrow_table().to_pylist()
    dlq = DeltaTable(str(lake.dlq)).to_pyarrow_table().to_pylist()
    seen: dict[Coordinates, int] = {}
    for row in out + dlq:
        key = (row["_partition"], row["_position"])
        seen[key] = seen.get(key, 0) + 1
    report.produced, report.rows = len(feed.produced), len(out) + len(dlq)
    report.lost = sum(1 for key in feed.produced if key not in seen)
    report.duplicated = sum(n - 1 for n in seen.values() if n > 1)
    report.wrong_content = sum(_differs(feed.produced.get(k), r) for k, r in _keyed(out, dlq))


def _keyed(out: list[dict], dlq: list[dict]) -> Iterator[tuple[Coordinates, dict]]:
    for row in out + dlq:
        yield (row["_partition"], row["_position"]), row


def _differs(produced: bytes | None, row: dict[str, Any]) -> bool:
    if "error_type" in row:  # a dead letter keeps the raw bytes
        return (row["value"] or b"") != (produced or b"")
    payload = json.loads(produced or b"{}")
    return bool(payload.get("id") != row["id"] or payload.get("text") != row["text"])


def run_trials(
    feed: Feed,
    *,
    trials: int,
    lake_root: Path,
    seed: int = 1,
    kill_window_s: tuple[float, float] = (1.0, 4.0),
) -> ChaosReport:
    """Runs ``trials`` killed runs while ``feed`` produces, drains, and checks the tables."""
    rng = random.Random(seed)
    lake, log = _Lake(lake_root), lake_root / "pipeline.log"
    lake_root.mkdir(parents=True, exist_ok=True)
    report = ChaosReport("kafka" if isinstance(feed, KafkaFeed) else "kinesis")
    feed.start()
    for number in range(1, trials + 1):
        report.trials.append(_one_trial(number, feed, lake, log, rng, kill_window_s))
    feed.join()
    _drain(feed, lake, log, report)
    _verify(feed, lake, report)
    return report


def _recoveries(trials: list[Trial]) -> list[float]:
    """Start-to-first-commit times of the runs that followed a killed one."""
    return [
        after.first_commit_s
        for before, after in itertools.pairwise(trials)
        if before.outcome.startswith("killed") and after.first_commit_s is not None
    ]


def print_report(reports: list[ChaosReport], console: Console | None = None) -> None:
    """Prints one table of trials per source kind, then the totals."""
    console = console or Console()
    for report in reports:
        table = Table(title=f"{report.kind}: kill -9 trials")
        for column in ("#", "kill", "outcome", "ran s", "new versions", "1st commit s", "offsets"):
            table.add_column(column, justify="right")
        for t in report.trials:
            first = f"{t.first_commit_s:.1f}" if t.first_commit_s is not None else "-"
            table.add_row(
                str(t.number),
                t.mode,
                t.outcome,
                f"{t.ran_s:.1f}",
                str(t.versions_added),
                first,
                "ok" if t.offsets_ok else "AHEAD",
            )
        console.print(table)
        recoveries = _recoveries(report.trials)
        if recoveries:
            console.print(
                f"{report.kind}: after a kill, the next run's first commit came "
                f"{statistics.median(recoveries):.1f} s after its start (median of "
                f"{len(recoveries)}; max {max(recoveries):.1f} s)"
            )
        console.print(
            f"{report.kind}: produced {report.produced:,} · rows {report.rows:,} · "
            f"lost {report.lost} · duplicated {report.duplicated} · wrong content "
            f"{report.wrong_content} · drain runs {report.drain_runs} (the last read "
            f"{report.last_run_read}) · "
            f"{'EXACTLY ONCE' if report.exactly_once else 'FAILED'}"
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.faults.chaos``: starts local services, runs the trials, prints a table."""
    parser = argparse.ArgumentParser(prog="python -m tests.faults.chaos", description=__doc__)
    parser.add_argument("--kind", choices=("kafka", "kinesis", "both"), default="both")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument(
        "--rate",
        type=float,
        help="messages per second (default: spread over the trials, about 3 s each)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lake", help="where the tables go (default: a temporary directory)")
    parser.add_argument(
        "--streaming",
        action="store_true",
        help="streaming trials: one long-running run per trial, faults of every kind "
        "(see tests.faults.chaos_streaming); --records is then ignored",
    )
    parser.add_argument(
        "--telemetry_kills",
        type=int,
        default=2,
        help="with --streaming and Kafka: kills of the telemetry pipeline (0: none)",
    )
    parser.add_argument("--json", help="with --streaming: also write the reports here")
    args = parser.parse_args(argv)
    if args.streaming:
        from tests.faults.chaos_streaming import streaming_main

        return streaming_main(args)
    from runners.local.aws import MotoServer
    from runners.local.broker import LocalKafkaBroker

    reports = []
    root = Path(args.lake or tempfile.mkdtemp(prefix="chaos-"))
    with ExitStack() as stack:
        rate = args.rate or args.records / (3.0 * max(args.trials, 1))
        feed_args = {"records": args.records, "rate_per_s": rate, "seed": args.seed}
        if args.kind in ("kafka", "both"):
            broker = stack.enter_context(LocalKafkaBroker())
            feed: Feed = KafkaFeed(broker.bootstrap_servers, **feed_args)
            reports.append(run_trials(feed, trials=args.trials, lake_root=root / "kafka"))
        if args.kind in ("kinesis", "both"):
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
            moto = stack.enter_context(MotoServer())
            feed = KinesisFeed(moto.endpoint_url, **feed_args)
            reports.append(run_trials(feed, trials=args.trials, lake_root=root / "kinesis"))
    print_report(reports)
    print(f"tables and the pipeline log are under {root}")
    return 0 if all(r.exactly_once for r in reports) else 1


if __name__ == "__main__":
    from beam_pipelines.launch.exiting import run_and_exit

    run_and_exit(main)
