"""Fault trials on streaming runs: one long-running pipeline per trial while a producer writes.

Where :mod:`tests.faults.chaos` restarts bounded runs, these trials break a streaming run
(runner checkpoints, timers and watermarks in flight, group offsets committed as
reading goes on). Each trial starts the sentiment pipeline streaming, waits until
it has caught up with everything produced before the previous fault (the restart
drains), checks the tables so far, then does one of:

* ``kill``: SIGKILL at a random moment;
* ``kill-in-commit``: SIGKILL the moment a commit has written a data file but not
  its log entry;
* ``kill-in-offset-commit`` (Kafka): SIGKILL as the sink commits the consumer
  group's offsets after a table commit (the ``group_offsets`` failpoint, see
  :mod:`transforms.failpoints`);
* ``zombie``: SIGSTOP for 20 s; a second run starts on the same tables meanwhile;
  then SIGCONT, both run side by side, and both are stopped;
* ``broker-down``: the broker (Kafka) or the Kinesis endpoint is down for 10 s
  while the run goes on; then the run is stopped with Ctrl-C and must exit 0.

When the producer is done, a last run drains everything and is stopped. Every
produced (partition, position) must be in the tables exactly once with its
content, and the group offsets never ahead of the tables. A telemetry trial does
the same with kills under the telemetry pipeline and compares its window
aggregates with an independent computation over the produced readings.

    python -m tests.faults.chaos --streaming --kind both --trials 10
"""

from __future__ import annotations

import json
import os
import random
import signal
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from beam_pipelines.feeds.tweets import GeneratedMessage
from bench.streaming import StreamingProcess, TableWatcher
from tests.faults.chaos import Feed, KafkaFeed, KinesisFeed, _differs, _Lake, _offsets_behind_tables

__all__ = [
    "KAFKA_MODES",
    "KINESIS_MODES",
    "StreamingReport",
    "StreamingTrial",
    "kafka_source",
    "kinesis_source",
    "print_streaming_report",
    "run_streaming_trials",
    "run_telemetry_trial",
    "streaming_main",
]

KAFKA_MODES = ("kill", "kill-in-commit", "kill-in-offset-commit", "zombie", "broker-down")
KINESIS_MODES = ("kill", "kill-in-commit", "zombie", "broker-down")
START_UP_S = 180.0  # a cold start on a loaded 2-core machine, with a backlog to drain
STOPPED_S = 20.0  # how long a zombie stays stopped
DOWN_S = 10.0  # how long the broker stays down
# The last run is stopped no earlier than this after its start, even when nothing was
# left to drain, so its Ctrl-C tests a running pipeline's stop, not one still starting.
MIN_DRAIN_RUN_S = 15.0


@dataclass
class StreamingTrial:
    """One streaming run, its fault, and the state of the tables when it started."""

    number: int
    mode: str
    outcome: str = ""
    ran_s: float = 0.0
    drained_s: float | None = None  # from start until caught up with the last fault
    lost: int = 0  # produced before the last fault, not in the tables after the drain
    duplicated: int = 0
    wrong_content: int = 0
    offsets_ok: bool = True
    exit_codes: list[int] = field(default_factory=list)  # runs stopped with Ctrl-C


@dataclass
class StreamingReport:
    """The trials of one source kind and the final check."""

    kind: str
    trials: list[StreamingTrial] = field(default_factory=list)
    produced: int = 0
    rows: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong_content: int = 0
    unexpected: int = 0  # rows whose coordinates the producer never heard back about
    aggregates_ok: bool | None = None  # telemetry: windows equal the independent computation
    windows: int = 0

    @property
    def exactly_once(self) -> bool:
        trials_ok = all(
            t.lost == 0
            and t.duplicated == 0
            and t.wrong_content == 0
            and t.offsets_ok
            and all(code == 0 for code in t.exit_codes)
            for t in self.trials
        )
        return (
            trials_ok
            and self.lost == 0
            and self.duplicated == 0
            and self.wrong_content == 0
            and self.aggregates_ok is not False
        )


@dataclass
class _Source:
    """The source's server as the trials see it: where to reach it, how to take it down."""

    endpoint: str  # Kafka bootstrap servers or the Kinesis endpoint URL
    down_for: Callable[[float], None]


def _sentiment(feed: Feed, lake: _Lake, env: dict[str, str] | None = None) -> StreamingProcess:
    return StreamingProcess(
        "beam_pipelines.sentiment",
        [
            f"--source={feed.uri}",
            f"--output={lake.out}",
            f"--dlq={lake.dlq}",
            "--batch_size=250",
            "--max_batch_latency_s=1",
            "--partition_discovery_s=5",
            "--progress_interval_s=0",
        ],
        env=env or {},
    ).start()


def _wait_for_commit(lake: _Lake, versions: int, run: StreamingProcess, timeout_s: float) -> bool:
    """Waits until the tables have more than ``versions`` versions (or the run ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and run.running():
        if lake.versions() > versions:
            return True
        time.sleep(0.05)
    return False


def _check_so_far(
    trial: StreamingTrial, feed: Feed, lake: _Lake, watcher: TableWatcher, wanted: set[Any]
) -> None:
    watcher.poll()
    trial.lost = len(wanted - watcher.copies.keys())
    trial.duplicated = sum(n - 1 for n in watcher.copies.values() if n > 1)
    trial.offsets_ok = _offsets_behind_tables(feed, lake)


def _kill_in_commit(run: StreamingProcess, lake: _Lake, deadline: float) -> str:
    files = lake.data_files()
    while time.monotonic() < deadline and run.running():
        fresh = lake.data_files() - files
        if fresh:
            run.kill()
            return "killed in a commit" if fresh - lake.referenced() else "killed after a commit"
        time.sleep(0.002)
    run.kill()
    return "killed (no commit came)"


def _zombie(
    run: StreamingProcess, feed: Feed, lake: _Lake, trial: StreamingTrial, rng: random.Random
) -> str:
    versions = lake.versions()
    run.signal_group(signal.SIGSTOP)
    stopped_at = time.monotonic()
    second = _sentiment(feed, lake)
    committed = _wait_for_commit(lake, versions, second, START_UP_S)
    time.sleep(max(0.0, STOPPED_S - (time.monotonic() - stopped_at)))
    run.signal_group(signal.SIGCONT)
    time.sleep(rng.uniform(3.0, 6.0))  # two writers on the same tables
    trial.exit_codes += [run.stop().exit_code, second.stop().exit_code]
    return "zombie resumed beside a second run" if committed else "zombie (second run idle)"


def _one_trial(
    number: int,
    mode: str,
    feed: Feed,
    lake: _Lake,
    source: _Source,
    watcher: TableWatcher,
    wanted: set[Any],
    rng: random.Random,
) -> tuple[StreamingTrial, set[Any]]:
    """Starts a run, lets it drain ``wanted``, checks, breaks it; returns what to want next."""
    trial = StreamingTrial(number, mode)
    started = time.monotonic()
    run = _sentiment(feed, lake)
    if watcher.wait_for(wanted, timeout_s=START_UP_S, every_s=0.25):
        trial.drained_s = time.monotonic() - started
    _check_so_far(trial, feed, lake, watcher, wanted)
    if not run.running():
        trial.outcome = f"ended by itself (exit {run.exit_code})"
    elif mode == "kill":
        _wait_for_commit(lake, lake.versions(), run, 30)  # a run under way, then at random
        time.sleep(rng.uniform(0.0, 4.0))
        run.kill()
        trial.outcome = "killed"
    elif mode == "kill-in-commit":
        trial.outcome = _kill_in_commit(run, lake, time.monotonic() + 30)
    elif mode == "kill-in-offset-commit":
        # Drained and checked: once it commits (it is up), hand over to a run armed to die
        # at its n-th offset commit.
        _wait_for_commit(lake, lake.versions(), run, START_UP_S)
        trial.exit_codes.append(run.stop().exit_code)
        armed = {"DATAPLANE_FAILPOINT": f"group_offsets@{rng.randint(1, 3)}"}
        run = _sentiment(feed, lake, armed)
        deadline = time.monotonic() + START_UP_S
        while run.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = run.exit_code == -signal.SIGKILL
        trial.outcome = "killed in an offset commit" if killed else "no offset commit came"
        run.kill()
    elif mode == "zombie":
        trial.outcome = _zombie(run, feed, lake, trial, rng)
    elif mode == "broker-down":
        time.sleep(rng.uniform(0.5, 2.0))
        source.down_for(DOWN_S)
        time.sleep(rng.uniform(2.0, 4.0))
        trial.exit_codes.append(run.stop().exit_code)
        trial.outcome = f"rode out {DOWN_S:.0f} s down, stopped"
    trial.ran_s = time.monotonic() - started
    return trial, set(feed.produced)


def _final_check(feed: Feed, lake: _Lake, watcher: TableWatcher, report: StreamingReport) -> None:
    from deltalake import DeltaTable

    out = DeltaTable(str(lake.out)).to_pyarrow_table().to_pylist()
    dlq = DeltaTable(str(lake.dlq)).to_pyarrow_table().to_pylist()
    watcher.poll()
    report.produced, report.rows = len(feed.produced), len(out) + len(dlq)
    report.lost = len(feed.produced.keys() - watcher.copies.keys())
    report.duplicated = sum(n - 1 for n in watcher.copies.values() if n > 1)
    report.unexpected = len(watcher.copies.keys() - feed.produced.keys())
    report.wrong_content = sum(
        _differs(feed.produced[key], row)
        for row in out + dlq
        if (key := (row["_partition"], row["_position"])) in feed.produced
    )


def run_streaming_trials(
    feed: Feed,
    source: _Source,
    *,
    modes: list[str],
    lake_root: Path,
    seed: int = 1,
) -> StreamingReport:
    """One streaming run per mode in ``modes`` while ``feed`` produces; then drains and checks."""
    rng = random.Random(seed)
    lake = _Lake(lake_root)
    lake_root.mkdir(parents=True, exist_ok=True)
    watcher = TableWatcher([str(lake.out), str(lake.dlq)])
    report = StreamingReport("kafka" if isinstance(feed, KafkaFeed) else "kinesis")
    feed.start()
    wanted: set[Any] = set()
    for number, mode in enumerate(modes, start=1):
        trial, wanted = _one_trial(number, mode, feed, lake, source, watcher, wanted, rng)
        report.trials.append(trial)
    feed.finish()  # the producer wrote through every trial; what it wrote is drained now
    last = StreamingTrial(len(modes) + 1, "drain")
    started = time.monotonic()
    run = _sentiment(feed, lake)
    if watcher.wait_for(set(feed.produced), timeout_s=START_UP_S, every_s=0.25):
        last.drained_s = time.monotonic() - started
    _check_so_far(last, feed, lake, watcher, set(feed.produced))
    time.sleep(max(0.0, MIN_DRAIN_RUN_S - (time.monotonic() - started)))  # see MIN_DRAIN_RUN_S
    last.exit_codes.append(run.stop().exit_code)
    last.outcome, last.ran_s = "stopped", time.monotonic() - started
    report.trials.append(last)
    _final_check(feed, lake, watcher, report)
    return report


# Telemetry: windows recomputed across kills must equal a computation of our own.

WINDOW_S = 60
VEHICLES = 10


class TelemetryFeed(KafkaFeed):
    """Generated readings, one per vehicle every 6 s of event time, stamped with their arrival.

    Ten readings a window per vehicle: however few messages a loaded machine
    produces before the trials end, they span several windows.
    """

    def _generate(self) -> Iterable[GeneratedMessage]:
        from beam_pipelines.feeds.telemetry import generate_telemetry

        return generate_telemetry(
            self.records, vehicles=VEHICLES, bad_ratio=0.02, interval_ms=6000, seed=self.seed
        )


def _telemetry(feed: Feed, root: Path) -> StreamingProcess:
    return StreamingProcess(
        "beam_pipelines.telemetry",
        [
            f"--source={feed.uri}",
            f"--output={root / 'windows'}",
            f"--readings_output={root / 'readings'}",
            f"--late_output={root / 'late'}",
            f"--dlq={root / 'dead_letters'}",
            f"--window_s={WINDOW_S}",
            "--allowed_lateness_s=0",
            "--max_batch_latency_s=1",
            "--partition_discovery_s=5",
            "--progress_interval_s=0",
        ],
    ).start()


def expected_windows(values: Iterator[bytes | None]) -> dict[tuple[str, int], dict[str, float]]:
    """Per (vehicle, window start ms): count, mean, min and max speed, computed directly.

    The feed's bad messages are malformed (no physics errors), so a message counts
    exactly when it decodes.
    """
    from schemas.registry import LocalFileRegistry
    from transforms.validate import RecordDecoder

    registry = LocalFileRegistry()
    decoder = RecordDecoder(registry, registry.latest("vehicle_telemetry"))
    speeds: dict[tuple[str, int], list[float]] = {}
    for value in values:
        try:
            reading = decoder.decode(value or b"")
        except Exception:  # a dead letter: not part of any window
            continue
        ts_ms = _ms(reading["ts"]) if hasattr(reading["ts"], "timestamp") else reading["ts"]
        start = ts_ms // (WINDOW_S * 1000) * WINDOW_S * 1000
        speeds.setdefault((reading["vehicle_id"], start), []).append(reading["speed_kph"])
    return {
        key: {"count": len(v), "mean": sum(v) / len(v), "min": min(v), "max": max(v)}
        for key, v in speeds.items()
    }


def run_telemetry_trial(
    feed: TelemetryFeed, *, kills: int, lake_root: Path, seed: int = 1
) -> StreamingReport:
    """Kills the telemetry pipeline ``kills`` times while ``feed`` produces, then compares."""
    from deltalake import DeltaTable

    rng = random.Random(seed)
    report = StreamingReport("kafka telemetry")
    windows = lake_root / "windows"
    feed.start()
    for number in range(1, kills + 1):
        trial = StreamingTrial(number, "kill" if number % 2 else "kill-in-commit")
        started = time.monotonic()
        run = _telemetry(feed, lake_root)
        lake = _Lake(lake_root)
        lake.out, lake.dlq = windows, lake_root / "dead_letters"
        _wait_for_commit(lake, lake.versions(), run, START_UP_S)
        if trial.mode == "kill":
            time.sleep(rng.uniform(0.5, 3.0))
            run.kill()
            trial.outcome = "killed"
        else:
            trial.outcome = _kill_in_commit(run, lake, time.monotonic() + 30)
        trial.ran_s = time.monotonic() - started
        report.trials.append(trial)
    feed.finish()
    expected = expected_windows(iter(feed.produced.values()))
    report.produced, report.windows = len(feed.produced), len(expected)
    run = _telemetry(feed, lake_root)  # reads the topic again and upserts every window
    deadline = time.monotonic() + START_UP_S
    found: dict[tuple[str, int], dict[str, Any]] = {}
    while time.monotonic() < deadline and run.running():
        try:
            rows = DeltaTable(str(windows)).to_pyarrow_table().to_pylist()
        except Exception:  # not there yet
            rows = []
        found = {(r["vehicle_id"], _ms(r["window_start"])): r for r in rows}
        if len(found) >= len(expected) and _windows_match(found, expected):
            break
        time.sleep(0.5)
    drain = StreamingTrial(kills + 1, "drain", outcome="stopped")
    drain.exit_codes.append(run.stop().exit_code)
    drain.ran_s = time.monotonic() - (deadline - START_UP_S)
    report.trials.append(drain)
    rows = DeltaTable(str(windows)).to_pyarrow_table().to_pylist()  # as the stop left it
    found = {(r["vehicle_id"], _ms(r["window_start"])): r for r in rows}
    report.rows = len(found)
    report.aggregates_ok = _windows_match(found, expected) and len(found) == len(expected)
    report.lost = len(expected.keys() - found.keys())
    return report


def _ms(value: Any) -> int:
    return round(value.timestamp() * 1000)


def _windows_match(
    found: dict[tuple[str, int], dict[str, Any]], expected: dict[tuple[str, int], dict[str, float]]
) -> bool:
    for key, want in expected.items():
        row = found.get(key)
        if row is None or row["count"] != want["count"]:
            return False
        if abs(row["avg_speed_kph"] - want["mean"]) > 1e-6:
            return False
        if row["min_speed_kph"] != want["min"] or row["max_speed_kph"] != want["max"]:
            return False
    return True


def print_streaming_report(reports: list[StreamingReport], console: Console | None = None) -> None:
    """One table of trials per source kind, then the totals."""
    console = console or Console()
    for report in reports:
        table = Table(title=f"{report.kind}: streaming fault trials")
        for column in ("#", "fault", "outcome", "ran s", "drained s", "lost", "twice", "offsets"):
            table.add_column(column, justify="right")
        for t in report.trials:
            table.add_row(
                str(t.number),
                t.mode,
                t.outcome + (f" (exit {t.exit_codes})" if t.exit_codes else ""),
                f"{t.ran_s:.1f}",
                f"{t.drained_s:.1f}" if t.drained_s is not None else "-",
                str(t.lost),
                str(t.duplicated),
                "ok" if t.offsets_ok else "AHEAD",
            )
        console.print(table)
        extra = (
            f" · windows {report.rows:,} of {report.windows:,} equal the independent computation: "
            f"{report.aggregates_ok}"
            if report.aggregates_ok is not None
            else f" · rows {report.rows:,} · unexpected {report.unexpected}"
        )
        console.print(
            f"{report.kind}: produced {report.produced:,}{extra} · lost {report.lost} · "
            f"duplicated {report.duplicated} · wrong content {report.wrong_content} · "
            f"{'EXACTLY ONCE' if report.exactly_once else 'FAILED'}"
        )


@contextmanager
def kafka_source() -> Iterator[_Source]:
    """The embedded broker behind an :class:`~tests.faults.outage.Outage` relay (clients see it)."""
    from runners.local.broker import LocalKafkaBroker
    from runners.local.process import free_port
    from tests.faults.outage import Outage

    relay_port = free_port()
    with (
        LocalKafkaBroker(advertised_port=relay_port) as broker,
        Outage(broker.port, port=relay_port) as relay,
    ):
        yield _Source(f"127.0.0.1:{relay.port}", relay.down_for)


@contextmanager
def kinesis_source(root: Path) -> Iterator[_Source]:
    """kinesalite keeping its streams on disk, so it can really stop and start again."""
    from runners.local.aws import LocalKinesalite

    with LocalKinesalite(path=str(root / "kinesalite")) as server:
        yield _Source(server.endpoint_url, lambda s: server.restart(down_s=s))


def streaming_main(args: Any) -> int:
    """``python -m tests.faults.chaos --streaming``: the trials for ``args.kind``, then a table."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    root = Path(args.lake or tempfile.mkdtemp(prefix="chaos-streaming-"))
    rate = args.rate or 100.0
    reports: list[StreamingReport] = []
    # Enough to produce through every trial (about 40 s each at most); the feed is
    # stopped when the trials are done.
    records = int(rate * args.trials * 40)
    feed_args = {"records": records, "rate_per_s": rate, "seed": args.seed}
    with ExitStack() as stack:
        if args.kind in ("kafka", "both"):
            kafka = stack.enter_context(kafka_source())
            modes = [KAFKA_MODES[n % len(KAFKA_MODES)] for n in range(args.trials)]
            feed: Feed = KafkaFeed(kafka.endpoint, **feed_args)
            reports.append(run_streaming_trials(feed, kafka, modes=modes, lake_root=root / "kafka"))
            print_streaming_report(reports[-1:])
            if args.telemetry_kills:
                telemetry = TelemetryFeed(kafka.endpoint, **feed_args)
                reports.append(
                    run_telemetry_trial(
                        telemetry, kills=args.telemetry_kills, lake_root=root / "telemetry"
                    )
                )
        if args.kind in ("kinesis", "both"):
            kinesis = stack.enter_context(kinesis_source(root))
            modes = [KINESIS_MODES[n % len(KINESIS_MODES)] for n in range(args.trials)]
            feed = KinesisFeed(kinesis.endpoint, **feed_args)
            reports.append(
                run_streaming_trials(feed, kinesis, modes=modes, lake_root=root / "kinesis")
            )
    print_streaming_report(reports)
    print(f"tables are under {root}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps([_as_dict(r) for r in reports], indent=2))
    return 0 if all(r.exactly_once for r in reports) else 1


def _as_dict(report: StreamingReport) -> dict[str, Any]:
    from dataclasses import asdict

    return {**asdict(report), "exactly_once": report.exactly_once}
