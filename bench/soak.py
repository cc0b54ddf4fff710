"""Soak: the sentiment and telemetry pipelines streaming for minutes at 70 % of capacity.

    make soak                                   # 10 minutes (not in CI)
    python -m bench.soak --duration_s 120       # a short one

Starts a local broker; calibrates what this machine sustains with both pipelines
running at once (their backlog drain rates, then streaming at rising shares of
those until they fall behind, see :func:`calibrate`); then streams both at
``--load`` (70 %) of those rates, 3 % (tweets) and 2 + 1 % (telemetry) bad
records, with ``--compact_every_s`` on, for ``--duration_s``. Every 10 s it
samples the RSS and open file descriptors of every process of the run (the
pipelines, their children, the broker), produce→visible latency (p50/p99 of the
records that became visible in the interval), lag (produced minus visible), and each
Delta table's version count, active files and files on disk. A record is visible
once it is in one of its pipeline's outputs: tweets or dead letters (sentiment),
the readings Parquet or dead letters (telemetry), found by (partition, offset).

At the end: every produced record is in its pipeline's outputs exactly once, the
telemetry windows agree with the readings, the pipelines stop cleanly, and a
verdict per goal: RSS of each pipeline grows ≤ 10 % from warm-up to end; each
later minute's p99 latency is at most twice the first minute's; each table's active files
stay under what the compaction schedule allows. Exits 1 if any fails. Writes
``bench/results/soak.json`` (samples) and ``soak.png`` (the series).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from beam_pipelines.feeds.telemetry import generate_telemetry
from beam_pipelines.feeds.tweets import GeneratedMessage, generate_tweets
from bench.streaming import StreamingProcess, TimedProducer, percentile

RESULTS = Path(__file__).parent / "results"
SAMPLE_S = 10.0
POLL_S = 1.0
WINDOW_MS = 300_000  # the telemetry pipeline's default window


# --- the two pipelines -----------------------------------------------------------------


@dataclass
class Pipeline:
    """One pipeline of the soak: its topic, tables, generator and the record ledger."""

    name: str
    lake: Path
    topic: str
    partitions: int
    delta: dict[str, Path]  # label -> Delta table it writes
    visible_in: list[Path]  # outputs a record lands in (Delta tables or Parquet dirs)
    flags: list[str]
    messages: Callable[[], Iterator[GeneratedMessage]]
    ledger: Ledger = field(init=False)
    stream: Iterator[GeneratedMessage] = field(init=False)  # one sequence for every producer

    def __post_init__(self) -> None:
        self.ledger = Ledger()
        self.stream = self.messages()

    def process(self, bootstrap: str, extra: Sequence[str]) -> StreamingProcess:
        source = f"--source=kafka://{bootstrap}/{self.topic}"
        return StreamingProcess(
            f"beam_pipelines.{self.name}", [source, *self.flags, "--runner=direct", *extra]
        )


def sentiment(lake: Path, topic: str, seed: int) -> Pipeline:
    tweets, dead = lake / "tweets", lake / "dead_letters"
    return Pipeline(
        "sentiment",
        lake,
        topic,
        3,
        {"tweets": tweets, "dlq": dead},
        [tweets, dead],
        [f"--output={tweets}", f"--dlq={dead}"],
        lambda: generate_tweets(10**9, bad_ratio=0.03, seed=seed),
    )


def telemetry(lake: Path, topic: str, seed: int) -> Pipeline:
    paths = {n: lake / n for n in ("windows", "readings", "late", "dead_letters")}
    return Pipeline(
        "telemetry",
        lake,
        topic,
        2,
        {"windows": paths["windows"], "late": paths["late"], "dlq": paths["dead_letters"]},
        [paths["readings"], paths["dead_letters"]],
        [
            f"--output={paths['windows']}",
            f"--readings_output={paths['readings']}",
            f"--late_output={paths['late']}",
            f"--dlq={paths['dead_letters']}",
            # Files of 10k readings like the Delta sinks' batches (default 100k): the
            # calibration sees progress in steps of that; streaming cuts by latency anyway.
            "--readings_batch_size=10000",
        ],
        lambda: generate_telemetry(
            10**9, vehicles=100, bad_ratio=0.02, physics_bad_ratio=0.01, seed=seed
        ),
    )


# --- which records were produced and seen, and when ------------------------------------


class _Times:
    """A time per offset of one partition (NaN: not yet)."""

    def __init__(self) -> None:
        self.values = np.full(4096, np.nan)

    def put(self, offsets: np.ndarray, at: np.ndarray | float, *, first: bool) -> np.ndarray:
        """Sets times; with ``first`` only where none was set. Returns the offsets set."""
        if offsets.size and int(offsets.max()) >= self.values.size:
            grown = np.full(max(self.values.size * 2, int(offsets.max()) + 1), np.nan)
            grown[: self.values.size] = self.values
            self.values = grown
        if first:
            offsets = offsets[np.isnan(self.values[offsets])]
        self.values[offsets] = at
        return offsets


class Ledger:
    """Produce times and first-visible times of a pipeline's records, by partition and offset."""

    def __init__(self) -> None:
        self.produced: dict[str, _Times] = {}
        self.visible: dict[str, _Times] = {}
        self.produced_count = self.visible_count = 0
        self._pending: list[tuple[str, np.ndarray, float]] = []
        self.latencies: list[tuple[float, float]] = []  # (visible at, latency), all so far
        self._lock = threading.Lock()

    def add_produced(self, produced_at: dict[tuple[str, str], float]) -> None:
        by_partition: dict[str, list[tuple[int, float]]] = {}
        for (partition, offset), at in produced_at.items():
            by_partition.setdefault(partition, []).append((int(offset), at))
        with self._lock:
            for partition, pairs in by_partition.items():
                offsets, times = (np.array(column) for column in zip(*pairs, strict=True))
                times_of = self.produced.setdefault(partition, _Times())
                times_of.put(offsets.astype(np.int64), times, first=False)
                self.produced_count += len(pairs)

    def add_visible(self, partition: str, offsets: np.ndarray, at: float) -> None:
        with self._lock:
            new = self.visible.setdefault(partition, _Times()).put(offsets, at, first=True)
            self.visible_count += new.size
            if new.size:
                self._pending.append((partition, new, at))

    def take_latencies(self) -> list[float]:
        """Latencies of the records seen visible since the last call (produce time known)."""
        with self._lock:
            pending, self._pending, taken = self._pending, [], []
            for partition, offsets, at in pending:
                produced = self.produced.get(partition, _Times()).values
                known = offsets[offsets < produced.size]
                times = produced[known]
                done = known[~np.isnan(times)]
                if done.size < offsets.size:  # produce callback not booked yet
                    self._pending.append((partition, np.setdiff1d(offsets, done), at))
                for latency in (at - produced[done]).tolist():
                    taken.append(latency)
                    self.latencies.append((at, latency))
            return taken

    def unseen_before(self, moment: float) -> tuple[int, int]:
        """(records produced before ``moment`` that are not visible, records produced before it)."""
        unseen = total = 0
        with self._lock:
            for partition, produced in self.produced.items():
                offsets = np.flatnonzero(produced.values < moment)
                seen = self.visible.get(partition, _Times()).values
                inside = offsets[offsets < seen.size]
                unseen += int(np.count_nonzero(np.isnan(seen[inside]))) + offsets.size - inside.size
                total += offsets.size
        return unseen, total

    def unseen_keys(self, before: float = math.inf) -> set[str]:
        """``partition:offset`` of the records produced before ``before`` not visible yet."""
        keys: set[str] = set()
        with self._lock:
            for partition, produced in self.produced.items():
                offsets = np.flatnonzero(produced.values < before)
                seen = self.visible.get(partition, _Times()).values
                inside = offsets[offsets < seen.size]
                late = [*inside[np.isnan(seen[inside])], *offsets[offsets >= seen.size]]
                keys.update(f"{partition}:{int(o)}" for o in late)
        return keys

    def latencies_of(self, since: float, until: float) -> np.ndarray:
        """Produce→visible latency of every record produced in [since, until) (NaN: unseen)."""
        found = []
        with self._lock:
            for partition, produced in self.produced.items():
                offsets = np.flatnonzero((produced.values >= since) & (produced.values < until))
                seen = self.visible.get(partition, _Times()).values
                inside = offsets[offsets < seen.size]
                found += [seen[inside] - produced.values[inside]]
                found += [np.full(offsets.size - inside.size, np.nan)]
        return np.concatenate(found) if found else np.array([])

    @property
    def lag(self) -> int:
        return self.produced_count - self.visible_count


class NewFiles:
    """The rows of files that appeared in a Delta table or Parquet directory since the last look.

    A compaction's rewritten file shows up here once; its records were seen already.
    """

    def __init__(self, path: Path) -> None:
        self.path, self._seen = path, set[str]()
        self._table: Any = None

    def poll(self) -> Iterator[pa.Table]:
        for file in self._files():
            if file in self._seen:
                continue
            try:
                table = pq.read_table(file, columns=["_partition", "_position"])
            except OSError:
                continue  # vacuumed, or not complete yet: the next look decides
            self._seen.add(file)
            yield table

    def _files(self) -> list[str]:
        if not (self.path / "_delta_log").is_dir():
            return [str(p) for p in self.path.rglob("*.parquet")]
        from deltalake import DeltaTable

        try:
            if self._table is None:
                self._table = DeltaTable(str(self.path))
            else:
                self._table.update_incremental()
        except Exception:
            return []
        return [uri.removeprefix("file://") for uri in self._table.file_uris()]


class PipelineExited(RuntimeError):
    """A pipeline process ended while it should be streaming."""


def poll(
    pipelines: list[Pipeline], watchers: dict[str, list[NewFiles]], runs: list[StreamingProcess]
) -> None:
    """Looks for newly visible records of every pipeline; raises if a pipeline exited."""
    for p, run in zip(pipelines, runs, strict=True):
        if not run.running():
            stopped = run.stop()
            print(stopped.stderr[-3000:], file=sys.stderr)
            raise PipelineExited(f"{p.name} exited with code {stopped.exit_code}")
        watch(p, watchers[p.name])


def watch(pipeline: Pipeline, watchers: list[NewFiles]) -> None:
    now = time.time()
    for watcher in watchers:
        for table in watcher.poll():
            for key, group in _by_partition(table).items():
                pipeline.ledger.add_visible(key, group, now)


def _by_partition(table: pa.Table) -> dict[str, np.ndarray]:
    partitions = table["_partition"].to_numpy(zero_copy_only=False)
    offsets = pc.cast(table["_position"], pa.int64()).to_numpy(zero_copy_only=False)
    return {str(p): offsets[partitions == p] for p in np.unique(partitions)}


# --- producing at a steady rate --------------------------------------------------------


class SteadyProducer(threading.Thread):
    """Produces a pipeline's messages at ``rate`` per second until stopped."""

    def __init__(self, bootstrap: str, pipeline: Pipeline, rate: float) -> None:
        super().__init__(daemon=True, name=f"produce-{pipeline.name}")
        self._producer = TimedProducer(bootstrap, pipeline.topic)
        self._pipeline, self._rate = pipeline, rate
        self._messages = pipeline.stream
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def send(self, count: int) -> None:
        chunk = list(itertools.islice(self._messages, count))
        self._producer.send(chunk)
        self._pipeline.ledger.add_produced(self._producer.produced_at)
        self._producer.produced_at.clear()
        self._producer.values.clear()

    def run(self) -> None:
        started, sent = time.monotonic(), 0
        try:
            while not self.stopped.is_set():
                due = int((time.monotonic() - started) * self._rate) - sent
                if due > 0:
                    count = min(due, max(1, int(self._rate)))  # at most 1 s worth at once
                    self.send(count)
                    sent += count
                self.stopped.wait(0.05)
        except BaseException as err:
            self.error = err


# --- sampling --------------------------------------------------------------------------


@dataclass
class Sample:
    t_s: float
    processes: dict[str, dict[str, float]]  # label -> rss_mb, fds
    latency: dict[str, dict[str, float | None]]  # pipeline -> p50_s, p99_s, n
    lag: dict[str, int]
    tables: dict[str, dict[str, int | None]]  # label -> versions, files, on_disk


def process_tree(root: int) -> dict[int, int]:
    """pid -> parent pid of every process below ``root``."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    below: dict[int, int] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                below[pid] = ppid
                frontier.append(pid)
    return below


def _label(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [w.decode(errors="replace") for w in command if w]
    for pipeline in ("sentiment", "telemetry"):
        if f"beam_pipelines.{pipeline}" in words:
            return pipeline
    if words and words[0].endswith("tansu"):
        return "broker"
    return Path(words[0]).name if words else f"pid {pid}"


def processes() -> dict[str, dict[str, float]]:
    """RSS (MiB) and open fds of every process this soak started (and theirs), by label."""
    tree = process_tree(os.getpid())
    labels: dict[int, str] = {}
    found: dict[str, dict[str, float]] = {}
    for pid in sorted(tree):
        parent = labels.get(tree[pid])
        labels[pid] = _label(pid) if parent is None else f"{parent}/{_label(pid)}"
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue  # gone meanwhile
        kib = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
        label = labels[pid] if labels[pid] not in found else f"{labels[pid]} {pid}"
        found[label] = {"rss_mb": round(kib / 1024, 1), "fds": fds}
    return found


def table_stats(path: Path) -> dict[str, int | None]:
    on_disk = sum(1 for _ in path.rglob("*.parquet")) if path.exists() else 0
    if not (path / "_delta_log").is_dir():
        return {"versions": None, "files": None, "on_disk": on_disk}
    from deltalake import DeltaTable

    try:
        table = DeltaTable(str(path))
    except Exception:
        return {"versions": None, "files": None, "on_disk": on_disk}
    return {
        "versions": int(table.version()) + 1,
        "files": len(table.file_uris()),
        "on_disk": on_disk,
    }


def sample(t_s: float, pipelines: list[Pipeline]) -> Sample:
    latency: dict[str, dict[str, float | None]] = {}
    for p in pipelines:
        taken = p.ledger.take_latencies()
        latency[p.name] = {
            "p50_s": round(percentile(taken, 0.5), 2) if taken else None,
            "p99_s": round(percentile(taken, 0.99), 2) if taken else None,
            "n": len(taken),
        }
    tables = {
        f"{p.name}/{label}": table_stats(path) for p in pipelines for label, path in p.delta.items()
    }
    tables["telemetry/readings (parquet)"] = table_stats(pipelines[1].lake / "readings")
    lag = {p.name: p.ledger.lag for p in pipelines}
    return Sample(round(t_s, 1), processes(), latency, lag, tables)


# --- the phases ------------------------------------------------------------------------


def start(
    pipelines: list[Pipeline], bootstrap: str, extra: Sequence[str]
) -> list[StreamingProcess]:
    return [p.process(bootstrap, extra).start() for p in pipelines]


def stop(runs: list[StreamingProcess], logs: Path | None = None) -> list[int]:
    """Stops the pipelines (Ctrl-C); their exit codes. Their output goes to ``logs``."""
    codes = []
    for run in runs:
        stopped = run.stop(timeout_s=120)
        if stopped.exit_code != 0:
            print(stopped.stderr[-3000:], file=sys.stderr)
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            name = run.module.rsplit(".", 1)[-1]
            (logs / f"soak-{name}.log").write_text(stopped.stdout + stopped.stderr)
        codes.append(stopped.exit_code)
    return codes


STEPS = (0.1, 0.2, 0.3, 0.4, 0.55, 0.7, 0.85, 1.0, 1.25, 1.5)  # shares of drain rates tried
STEP_S = 40.0


def calibrate(
    bootstrap: str, work: Path, backlog: dict[str, int], extra: Sequence[str], timeout_s: float
) -> dict[str, float]:
    """What both pipelines sustain at once while streaming (records/s each).

    1. Both drain a backlog at once (after a probe, so start-up does not count): each
       one's drain rate is what it got through while both were draining. Draining
       works in big bundles and batches, so this bounds what streaming keeps up with.
    2. Both stream at shares of their drain rates, :data:`STEP_S` each, to find the
       highest they keep up with (see :func:`ramp`); the rates of that share are returned.
    """
    from transforms.sources.kafka_admin import ensure_topic

    suffix = uuid.uuid4().hex[:6]
    pipelines = [
        sentiment(work / "calibration" / "sentiment", f"cal-tweets-{suffix}", 101),
        telemetry(work / "calibration" / "telemetry", f"cal-telemetry-{suffix}", 102),
    ]
    for p in pipelines:
        ensure_topic(bootstrap, p.topic, partitions=p.partitions)
        SteadyProducer(bootstrap, p, 0).send(500)
    runs = start(pipelines, bootstrap, extra)
    watchers = {p.name: [NewFiles(path) for path in p.visible_in] for p in pipelines}
    try:
        took = until_visible(pipelines, watchers, runs, 0.9, timeout_s)
        print(f"calibration: pipelines up and through a probe after {took:.0f} s")
        drained = drain_rates(bootstrap, pipelines, watchers, runs, backlog, timeout_s)
        share = ramp(bootstrap, pipelines, watchers, runs, drained)
        print(f"calibration: both keep up with {share:.0%} of their drain rates")
    finally:
        stop(runs)
    return {name: share * rate for name, rate in drained.items()}


def drain_rates(
    bootstrap: str,
    pipelines: list[Pipeline],
    watchers: dict[str, list[NewFiles]],
    runs: list[StreamingProcess],
    backlog: dict[str, int],
    timeout_s: float,
) -> dict[str, float]:
    """Each pipeline's rate while both drain a backlog at once."""
    producers = {p.name: SteadyProducer(bootstrap, p, 0) for p in pipelines}
    started = time.time()
    for chunk in range(0, max(backlog.values()), 5000):  # as fast as the broker takes them
        for p in pipelines:
            if chunk < backlog[p.name]:
                producers[p.name].send(min(5000, backlog[p.name] - chunk))
    print(f"calibration: a backlog produced in {time.time() - started:.0f} s: {backlog}")
    until_visible(pipelines, watchers, runs, 0.95, timeout_s)
    # Over the time both drained: the first to finish would take more than its share after.
    visible = {p.name: np.sort(_visible_since(p, started)) for p in pipelines}  # NaN last
    ended = time.time()  # for one that did not get there within the timeout
    done_at = {
        n: float(np.nan_to_num(v[int(0.95 * v.size) - 1], nan=ended)) for n, v in visible.items()
    }
    common = min(done_at.values())
    rates = {}
    for name, times in visible.items():
        count = _count_at(times[~np.isnan(times)], common, started)
        rates[name] = count / max(common - started, 1.0)
        print(
            f"calibration: {name} drains {rates[name]:,.0f} records/s ({count:,.0f} of "
            f"{times.size:,} through {common - started:.1f} s after the backlog's first record "
            f"was produced; 95 % visible after {done_at[name] - started:.1f} s)"
        )
    return rates


def ramp(
    bootstrap: str,
    pipelines: list[Pipeline],
    watchers: dict[str, list[NewFiles]],
    runs: list[StreamingProcess],
    drained: dict[str, float],
) -> float:
    """The highest share of the drain rates both pipelines keep up with when streaming.

    Tries 40 %, then up in steps while kept up or down while not. A step streams both
    for :data:`STEP_S` and is kept up with when, for each pipeline, the median latency
    of what was produced near the step's end is at most 1.5 s above that of what was
    produced near its start, and at most 12 s (a share of records that reach their
    table late does not move a median).
    """
    tried: dict[float, bool] = {}
    share = 0.4
    while share not in tried:
        tried[share] = stream_step(bootstrap, pipelines, watchers, runs, drained, share)
        up = [s for s in STEPS if s > share]
        down = [s for s in STEPS if s < share]
        if tried[share] and up and not any(ok is False for s, ok in tried.items() if s > share):
            share = up[0]
        elif not tried[share] and down:
            share = down[-1]
    kept = [s for s, ok in tried.items() if ok]
    return max(kept) if kept else min(STEPS)


def stream_step(
    bootstrap: str,
    pipelines: list[Pipeline],
    watchers: dict[str, list[NewFiles]],
    runs: list[StreamingProcess],
    drained: dict[str, float],
    share: float,
) -> bool:
    """Streams both pipelines at ``share`` of their drain rates; whether both kept up."""
    producers = [SteadyProducer(bootstrap, p, share * drained[p.name]) for p in pipelines]
    started = time.time()
    for producer in producers:
        producer.start()
    while time.time() - started < STEP_S + 20:  # 20 s more for the step's last records
        if time.time() - started >= STEP_S:
            for producer in producers:
                producer.stopped.set()
        poll(pipelines, watchers, runs)
        time.sleep(POLL_S)
    medians = {}
    for p in pipelines:
        early = p.ledger.latencies_of(started + 5, started + 15)
        late = p.ledger.latencies_of(started + STEP_S - 15, started + STEP_S - 5)
        medians[p.name] = tuple(
            float(np.median(np.nan_to_num(x, nan=np.inf))) for x in (early, late)
        )
    ok = all(late <= early + 1.5 and late <= 12 for early, late in medians.values())
    print(
        f"calibration: streaming at {share:.0%} of the drain rates, median latency early → late "
        "in the step: "
        + ", ".join(f"{n} {e:.1f} → {lt:.1f} s" for n, (e, lt) in medians.items())
        + (" (kept up)" if ok else " (fell behind)"),
        flush=True,
    )
    wait_caught_up(pipelines, watchers, runs, started, timeout_s=120)  # the next starts level
    return ok


def _count_at(visible: np.ndarray, moment: float, started: float) -> float:
    """How many records were through by ``moment``, interpolated between commits.

    A commit makes a whole batch visible at once; its records went through between
    the commit before and it.

    >>> _count_at(np.array([10.0, 10.0, 20.0, 20.0]), 15.0, 0.0)
    3.0
    """
    steps, counts = np.unique(visible, return_counts=True)
    cumulative = np.cumsum(counts)
    after = int(np.searchsorted(steps, moment, side="right"))
    if after >= steps.size:
        return float(cumulative[-1])
    t0, c0 = (steps[after - 1], cumulative[after - 1]) if after else (started, 0)
    t1, c1 = steps[after], cumulative[after]
    return float(c0 + (c1 - c0) * (moment - t0) / (t1 - t0))


def _visible_since(pipeline: Pipeline, since: float) -> np.ndarray:
    """First-visible times (NaN: not yet) of the records produced since ``since``."""
    found = []
    for partition, produced in pipeline.ledger.produced.items():
        seen = pipeline.ledger.visible.get(partition, _Times()).values
        offsets = np.flatnonzero(produced.values >= since)
        inside = offsets[offsets < seen.size]
        found += [seen[inside], np.full(offsets.size - inside.size, np.nan)]
    return np.concatenate(found)


def until_visible(
    pipelines: list[Pipeline],
    watchers: dict[str, list[NewFiles]],
    runs: list[StreamingProcess],
    share: float,
    timeout_s: float,
) -> float:
    """Polls until ``share`` of each pipeline's produced records is visible; the time taken."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        poll(pipelines, watchers, runs)
        if all(p.ledger.visible_count >= share * p.ledger.produced_count for p in pipelines):
            break
        time.sleep(0.5)
    return time.monotonic() - started


def wait_caught_up(
    pipelines: list[Pipeline],
    watchers: dict[str, list[NewFiles]],
    runs: list[StreamingProcess],
    since: float,
    timeout_s: float,
    settled_s: float = 15.0,
) -> float:
    """Polls until each pipeline shows 97 % of what was produced from ``since`` until
    ``settled_s`` ago (a few records may reach their tables late); the time it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        poll(pipelines, watchers, runs)
        shares = [p.ledger.latencies_of(since, time.time() - settled_s) for p in pipelines]
        if all(x.size and np.mean(np.isnan(x)) <= 0.03 for x in shares):
            break
        time.sleep(POLL_S)
    return time.monotonic() - started


def drain(
    pipelines: list[Pipeline],
    watchers: dict[str, list[NewFiles]],
    runs: list[StreamingProcess],
    timeout_s: float,
    still_s: float = 30.0,
) -> dict[str, int]:
    """Polls until everything produced is visible, or nothing more became visible for
    ``still_s``; returns each pipeline's records not visible then."""
    deadline, last_change, last = time.monotonic() + timeout_s, time.monotonic(), -1
    while time.monotonic() < deadline and time.monotonic() - last_change < still_s:
        poll(pipelines, watchers, runs)
        lag = sum(p.ledger.lag for p in pipelines)
        if lag == 0:
            break
        if lag != last:
            last_change, last = time.monotonic(), lag
        time.sleep(POLL_S)
    return {p.name: p.ledger.lag for p in pipelines}


# --- checks at the end -----------------------------------------------------------------


def outputs(pipeline: Pipeline) -> pa.Table:
    """Every row of the pipeline's outputs: ``key`` (partition:offset) and ``where`` it is."""
    from deltalake import DeltaTable

    parts = []
    for path in pipeline.visible_in:
        if (path / "_delta_log").is_dir():
            delta = DeltaTable(str(path))
            letters = "error_type" in pa.schema(delta.schema().to_arrow()).names
            columns = ["_partition", "_position", *(["error_type"] if letters else [])]
            table = delta.to_pyarrow_table(columns=columns)
            where = pa.array([path.name] * table.num_rows, pa.string())
            if letters:
                where = pc.binary_join_element_wise(f"{path.name}:", table["error_type"], "")
            parts.append(_keyed(table, where))
        elif path.exists():
            for file in path.rglob("*.parquet"):
                table = pq.read_table(file, columns=["_partition", "_position"])
                parts.append(_keyed(table, pa.array([path.name] * table.num_rows, pa.string())))
    empty = pa.table({"key": pa.array([], pa.string()), "where": pa.array([], pa.string())})
    return pa.concat_tables(parts) if parts else empty


def _keyed(table: pa.Table, where: Any) -> pa.Table:
    key = pc.binary_join_element_wise(table["_partition"], table["_position"], ":")
    return pa.table({"key": key, "where": where})


def exactly_once(pipeline: Pipeline, stale: set[str]) -> dict[str, Any]:
    """Records produced, missing and in more than one copy across the pipeline's outputs.

    Also where the records landed that were ``stale`` (produced over 30 s before the
    soak ended, not visible when it did), and those not visible until the stop.
    """
    rows = outputs(pipeline)
    counts = rows.group_by("key").aggregate([([], "count_all")])
    doubled = pc.sum(pc.greater(counts["count_all"], 1)).as_py() or 0
    produced = {
        f"{partition}:{offset}"
        for partition, times in pipeline.ledger.produced.items()
        for offset in np.flatnonzero(~np.isnan(times.values)).tolist()
    }
    found = set(counts["key"].to_pylist())
    return {
        "produced": len(produced),
        "missing": len(produced - found),
        "doubled": int(doubled),
        "unexpected": len(found - produced),
        "stale_at_soak_end": _where(rows, stale),
        "visible_only_after_stop": _where(rows, pipeline.ledger.unseen_keys()),
    }


def _where(rows: pa.Table, keys: set[str]) -> dict[str, int]:
    """How many of ``keys`` are in each output."""
    found = rows.filter(pc.is_in(rows["key"], pa.array(sorted(keys), pa.string())))
    tally = found.group_by("where").aggregate([([], "count_all")]).to_pylist()
    return {row["where"]: row["count_all"] for row in sorted(tally, key=lambda r: r["where"])}


def windows_match_readings(lake: Path) -> dict[str, int]:
    """The windows table's counts against the readings Parquet, per (vehicle, window)."""
    from deltalake import DeltaTable

    windows = DeltaTable(str(lake / "windows")).to_pyarrow_table(
        columns=["vehicle_id", "window_start", "count"]
    )
    starts = pc.cast(pc.cast(windows["window_start"], pa.timestamp("ms", tz="UTC")), pa.int64())
    stored = dict(
        zip(
            zip(windows["vehicle_id"].to_pylist(), starts.to_pylist(), strict=True),
            windows["count"].to_pylist(),
            strict=True,
        )
    )
    readings = pa.concat_tables(
        pq.read_table(str(f), columns=["vehicle_id", "ts"])
        for f in (lake / "readings").rglob("*.parquet")
    )
    ms = pc.cast(pc.cast(readings["ts"], pa.timestamp("ms", tz="UTC")), pa.int64()).to_numpy()
    keys = readings.append_column("start", pa.array(ms - ms % WINDOW_MS))
    counted = keys.group_by(["vehicle_id", "start"]).aggregate([([], "count_all")])
    expected = dict(
        zip(
            zip(counted["vehicle_id"].to_pylist(), counted["start"].to_pylist(), strict=True),
            counted["count_all"].to_pylist(),
            strict=True,
        )
    )
    differ = sum(1 for key, n in stored.items() if expected.get(key) != n)
    return {"windows": len(stored), "windows_of_readings": len(expected), "differ": differ}


# --- verdicts --------------------------------------------------------------------------


@dataclass
class Verdict:
    goal: str
    passed: bool | None  # None: reported, not a goal
    detail: str


def rss_verdicts(samples: list[Sample], warm_up_s: float, names: Sequence[str]) -> list[Verdict]:
    """Each pipeline's RSS (its processes together): the minute after warm-up vs the last.

    The broker is reported, not judged: it keeps every topic in memory.
    """
    verdicts = []
    end_s = samples[-1].t_s
    for name in [*names, "broker"]:

        def total(s: Sample, name: str = name) -> float:
            own = (v["rss_mb"] for k, v in s.processes.items() if k.split("/")[0] == name)
            return sum(own)

        base = [total(s) for s in samples if warm_up_s <= s.t_s < warm_up_s + 60]
        last = [total(s) for s in samples if s.t_s > end_s - 60]
        if not base or not last:
            verdicts.append(Verdict(f"RSS {name}", False, "too few samples after warm-up"))
            continue
        b, e = float(np.median(base)), float(np.median(last))
        growth = e / b - 1
        judged = name != "broker"
        verdicts.append(
            Verdict(
                f"RSS {name} ≤ +10 % after warm-up" if judged else "RSS broker (in-memory topics)",
                growth <= 0.10 if judged else None,
                f"{b:,.0f} → {e:,.0f} MiB ({growth:+.1%}; medians of the minute after "
                f"{warm_up_s:.0f} s and of the last minute)",
            )
        )
    return verdicts


def latency_verdicts(pipelines: list[Pipeline], t0: float, duration_s: float) -> list[Verdict]:
    verdicts = []
    for p in pipelines:
        minutes: dict[int, list[float]] = {}
        for at, latency in p.ledger.latencies:
            minute = int((at - t0) // 60)
            if 0 <= minute < int(duration_s // 60):
                minutes.setdefault(minute, []).append(latency)
        if 0 not in minutes or len(minutes) < 2:
            verdicts.append(Verdict(f"p99 latency {p.name}", False, "too few minutes"))
            continue
        p99 = {m: percentile(v, 0.99) for m, v in sorted(minutes.items())}
        worst = max((m for m in p99 if m), key=lambda m: p99[m])
        ok = all(v <= 2 * p99[0] for v in p99.values())
        series = " ".join(f"{v:.1f}" for v in p99.values())
        verdicts.append(
            Verdict(
                f"p99 latency {p.name} ≤ 2 x first minute",
                ok,
                f"first minute {p99[0]:.2f} s, worst later minute {p99[worst]:.2f} s "
                f"(minute {worst + 1}); per minute: {series}",
            )
        )
    return verdicts


def tail_verdicts(pipelines: list[Pipeline], t0: float, t_end: float) -> list[Verdict]:
    """The whole latency distribution of the records produced during the soak.

    The goal looks at records by the interval they became visible in; this counts
    also those that became visible only after the soak (or with the stop).
    """
    verdicts = []
    for p in pipelines:
        latencies = p.ledger.latencies_of(t0, t_end)
        seen = np.sort(latencies[~np.isnan(latencies)])
        if not seen.size:
            continue
        q = {f"p{k}": float(np.quantile(seen, k / 100)) for k in (50, 99, 99.9)}
        detail = ", ".join(f"{k} {v:.1f} s" for k, v in q.items())
        verdicts.append(
            Verdict(
                f"latency {p.name}, every record of the soak",
                None,
                f"{latencies.size:,} records: {detail}, max {seen[-1]:.1f} s; "
                f"over 30 s: {int(np.count_nonzero(seen > 30)):,}; only with the stop: "
                f"{int(np.count_nonzero(np.isnan(latencies))):,}",
            )
        )
    return verdicts


def file_verdicts(samples: list[Sample], every_s: float) -> list[Verdict]:
    verdicts = []
    after = [s for s in samples if s.t_s >= every_s + SAMPLE_S]
    span = samples[-1].t_s - samples[0].t_s
    for label in samples[-1].tables:
        first, last = samples[0].tables[label], samples[-1].tables[label]
        if last["versions"] is None or not after:
            continue
        rate = (last["versions"] - (first["versions"] or 0)) / max(span, 1.0)
        bound = 2 + math.ceil(2 * rate * every_s)
        peak = max(int(s.tables[label]["files"] or 0) for s in after)
        verdicts.append(
            Verdict(
                f"files bounded {label}",
                peak <= bound,
                f"at most {peak} active files after the first compaction, {last['files']} at "
                f"the end; bound {bound} = 2 + 2 x {rate:.2f} commits/s x {every_s:.0f} s; "
                f"{last['versions']} versions, {last['on_disk']} files on disk",
            )
        )
    return verdicts


# --- output ----------------------------------------------------------------------------


def print_samples(samples: list[Sample], pipelines: list[Pipeline]) -> None:
    from rich.console import Console
    from rich.table import Table

    names = [p.name for p in pipelines]
    table = Table(title="soak samples (every 10 s)", show_lines=False)
    for column in [
        "t s",
        *(f"RSS {n}" for n in (*names, "broker")),
        *(f"p50/p99 {n}" for n in names),
        *(f"lag {n}" for n in names),
        "fds s/t/b",
        "files tweets·dlq",
        "files windows·late·dlq",
    ]:
        table.add_column(column, justify="right")
    for s in samples:
        rss = [f"{s.processes.get(n, {}).get('rss_mb', 0):,.0f}" for n in (*names, "broker")]
        lat = [f"{_num(s.latency[n]['p50_s'])}/{_num(s.latency[n]['p99_s'])}" for n in names]
        fds = "/".join(str(int(s.processes.get(n, {}).get("fds", 0))) for n in (*names, "broker"))
        files_s = "·".join(_num(s.tables[f"sentiment/{t}"]["files"]) for t in ("tweets", "dlq"))
        files_t = "·".join(
            _num(s.tables[f"telemetry/{t}"]["files"]) for t in ("windows", "late", "dlq")
        )
        table.add_row(
            f"{s.t_s:.0f}", *rss, *lat, *(f"{s.lag[n]:,}" for n in names), fds, files_s, files_t
        )
    Console(width=200).print(table)


def _num(value: float | int | None) -> str:
    return "—" if value is None else f"{value:g}"


# One colour per pipeline (the broker grey), a line style per table of a pipeline.
_COLOURS = {"sentiment": "tab:blue", "telemetry": "tab:green", "broker": "tab:grey"}
_STYLES = {"tweets": "-", "windows": "-", "dlq": "--", "late": "-."}


def _colour(label: str) -> str:
    return _COLOURS.get(label.split("/")[0], "tab:red")


def plot(samples: list[Sample], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s.t_s / 60 for s in samples]
    fig, axes = plt.subplots(3, 2, figsize=(14, 12), sharex=True)
    for label in sorted({k for s in samples for k in s.processes}):
        for ax, key in ((axes[0][0], "rss_mb"), (axes[1][1], "fds")):
            values = [s.processes.get(label, {}).get(key, np.nan) for s in samples]
            ax.plot(t, values, color=_colour(label), label=label)
    _panel(axes[0][0], "RSS (MiB)")
    _panel(axes[1][1], "open file descriptors")
    for name in samples[0].latency:
        for q, style in (("p50_s", "--"), ("p99_s", "-")):
            values = [_nan(s.latency[name][q]) for s in samples]
            axes[0][1].plot(t, values, style, color=_colour(name), label=f"{name} {q[:3]}")
        axes[1][0].plot(t, [s.lag[name] for s in samples], color=_colour(name), label=name)
    _panel(axes[0][1], "produce→visible latency (s) of the records visible in each 10 s")
    _panel(axes[1][0], "lag (records produced, not yet visible)")
    for label in samples[0].tables:
        files = [_nan(s.tables[label]["files"]) for s in samples]
        if all(np.isnan(files)):
            continue  # not a Delta table, or never created
        colour, dash = _colour(label), _STYLES.get(label.split("/")[1], "-")
        versions = [_nan(s.tables[label]["versions"]) for s in samples]
        on_disk = [_nan(s.tables[label]["on_disk"]) for s in samples]
        axes[2][0].plot(t, files, dash, color=colour, label=label)
        axes[2][0].plot(t, on_disk, ":", color=colour, linewidth=1)
        axes[2][1].plot(t, versions, dash, color=colour, label=label)
    _panel(axes[2][0], "Delta active files (files on disk dotted)")
    _panel(axes[2][1], "Delta table versions")
    for ax in axes[2]:
        ax.set_xlabel("minutes since the pipelines caught up")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _panel(ax: Any, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _nan(value: float | int | None) -> float:
    return float("nan") if value is None else float(value)


# --- the run ---------------------------------------------------------------------------


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--duration_s", type=float, default=600)
    parser.add_argument("--compact_every_s", type=float, default=60)
    parser.add_argument("--load", type=float, default=0.7, help="share of the calibrated rate")
    parser.add_argument(
        "--warm_up_s", type=float, default=None, help="default: min(120, duration/5)"
    )
    parser.add_argument(
        "--calibration_backlog",
        type=int,
        nargs=2,
        default=[120_000, 200_000],
        metavar=("TWEETS", "READINGS"),
    )
    parser.add_argument(
        "--rates",
        type=float,
        nargs=2,
        metavar=("TWEETS", "READINGS"),
        help="skip calibration: these records/s at 100 %%",
    )
    parser.add_argument("--work_dir", help="where the tables go (default: a temporary directory)")
    parser.add_argument("--out", default=str(RESULTS), help="directory for soak.json and soak.png")
    return parser.parse_args(argv)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        return run(args)
    except PipelineExited as err:
        print(f"soak failed: {err}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    """Calibrates, soaks, checks; returns 0 when every goal is met."""
    import tempfile
    from contextlib import ExitStack

    from runners.local.broker import LocalKafkaBroker
    from transforms.sources.kafka_admin import ensure_topic

    warm_up_s = args.warm_up_s if args.warm_up_s is not None else min(120.0, args.duration_s / 5)
    extra = [f"--compact_every_s={args.compact_every_s}"]
    report: dict[str, Any] = {
        "args": vars(args),
        "load_before": load_average(),
        "cpus": os.cpu_count(),
    }
    print(f"load average before: {report['load_before']} ({os.cpu_count()} CPUs)")
    with ExitStack() as stack:
        broker = stack.enter_context(LocalKafkaBroker())
        bootstrap = broker.bootstrap_servers
        work = Path(
            args.work_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-"))
        )
        if args.rates:
            capacity = dict(zip(("sentiment", "telemetry"), args.rates, strict=True))
        else:
            backlog = dict(zip(("sentiment", "telemetry"), args.calibration_backlog, strict=True))
            capacity = calibrate(bootstrap, work, backlog, extra, timeout_s=300)
        rates = {name: args.load * rate for name, rate in capacity.items()}
        report.update(capacity=capacity, rates=rates)
        print("soak rates: " + ", ".join(f"{n} {r:,.0f}/s" for n, r in rates.items()))
        suffix = uuid.uuid4().hex[:6]
        pipelines = [
            sentiment(work / "soak" / "sentiment", f"soak-tweets-{suffix}", 1),
            telemetry(work / "soak" / "telemetry", f"soak-telemetry-{suffix}", 2),
        ]
        for p in pipelines:
            ensure_topic(bootstrap, p.topic, partitions=p.partitions)
        producers = [SteadyProducer(bootstrap, p, rates[p.name]) for p in pipelines]
        launched = time.time()
        runs = start(pipelines, bootstrap, extra)
        for run in runs:
            stack.callback(run.kill)
        for producer in producers:
            producer.start()
        watchers = {p.name: [NewFiles(path) for path in p.visible_in] for p in pipelines}
        startup_s = wait_caught_up(pipelines, watchers, runs, launched, timeout_s=300)
        print(f"start-up: caught up after {startup_s:.0f} s; soaking {args.duration_s:.0f} s")
        for p in pipelines:
            p.ledger.take_latencies()  # the start-up backlog is not part of the soak
            p.ledger.latencies.clear()
        t0 = time.time()
        samples = soak(pipelines, watchers, runs, t0, args.duration_s)
        t_end = time.time()
        stale = {p.name: p.ledger.unseen_keys(before=t_end - 30) for p in pipelines}
        for producer in producers:
            producer.stopped.set()
            producer.join(timeout=30)
        errors = [str(p.error) for p in producers if p.error]
        not_visible = drain(pipelines, watchers, runs, timeout_s=180)
        windows = settle_windows(pipelines[1].lake, timeout_s=60)
        codes = stop(runs, Path(args.out))  # their progress lines: watermark, lag
        report["load_after"] = load_average()
        checks = {p.name: exactly_once(p, stale[p.name]) for p in pipelines}
        report.update(
            startup_s=startup_s,
            not_visible_after_drain=not_visible,
            exit_codes=codes,
            exactly_once=checks,
            windows=windows,
            producer_errors=errors,
        )
        verdicts = [
            *rss_verdicts(samples, warm_up_s, [p.name for p in pipelines]),
            *latency_verdicts(pipelines, t0, args.duration_s),
            *tail_verdicts(pipelines, t0, t_end),
            *file_verdicts(samples, args.compact_every_s),
            *end_verdicts(checks, windows, codes, errors, not_visible),
        ]
        return finish(args, report, samples, pipelines, verdicts)
    return 1


def soak(
    pipelines: list[Pipeline],
    watchers: dict[str, list[NewFiles]],
    runs: list[StreamingProcess],
    t0: float,
    duration_s: float,
) -> list[Sample]:
    samples: list[Sample] = []
    next_sample = t0 + SAMPLE_S
    while True:
        poll(pipelines, watchers, runs)
        now = time.time()
        if now >= next_sample:
            s = sample(now - t0, pipelines)
            samples.append(s)
            print(_line(s), flush=True)
            next_sample += SAMPLE_S
            if s.t_s >= duration_s - 0.5:
                return samples
        time.sleep(max(0.0, min(POLL_S, next_sample - time.time())))


def _line(s: Sample) -> str:
    rss = " ".join(f"{k} {v['rss_mb']:,.0f}" for k, v in s.processes.items())
    lat = " ".join(f"{k} {_num(v['p50_s'])}/{_num(v['p99_s'])} s" for k, v in s.latency.items())
    files = " ".join(
        f"{k.split('/')[1][:7]} {_num(v['files'])}"
        for k, v in s.tables.items()
        if v["files"] is not None
    )
    return (
        f"t={s.t_s:5.0f}s  RSS MiB: {rss} | latency p50/p99: {lat} | lag: {s.lag} | files: {files}"
    )


def settle_windows(lake: Path, timeout_s: float) -> dict[str, int]:
    """Waits (idle partitions move the watermark on) until every window of the readings fired."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = windows_match_readings(lake)
        if found["differ"] == 0 and found["windows"] == found["windows_of_readings"]:
            return found
        if time.monotonic() >= deadline:
            return found
        time.sleep(2)


def end_verdicts(
    checks: dict[str, dict[str, Any]],
    windows: dict[str, int],
    codes: list[int],
    errors: list[str],
    not_visible: dict[str, int],
) -> list[Verdict]:
    verdicts = [
        Verdict(
            f"exactly once {name}",
            not (c["missing"] or c["doubled"] or c["unexpected"]) and bool(c["produced"]),
            f"{c['produced']:,} produced, {c['missing']} missing, "
            f"{c['doubled']} in more than one copy. Produced over 30 s before the soak's end, "
            f"not visible at its end: {c['stale_at_soak_end'] or 'none'}; not visible 30 s "
            f"after the last produce, landed with the stop: "
            f"{c['visible_only_after_stop'] or 'none'}",
        )
        for name, c in checks.items()
    ]
    verdicts.append(
        Verdict(
            "telemetry windows = readings",
            windows["differ"] == 0 and windows["windows"] == windows["windows_of_readings"],
            f"{windows['windows']:,} windows stored, {windows['windows_of_readings']:,} in the "
            f"readings, {windows['differ']} differ",
        )
    )
    verdicts.append(
        Verdict(
            "visible without more input",
            None,
            "records not visible 30 s after the producers stopped (nothing more came): "
            + ", ".join(f"{n} {lag:,}" for n, lag in not_visible.items()),
        )
    )
    verdicts.append(
        Verdict(
            "clean stop",
            all(c == 0 for c in codes) and not errors,
            f"exit codes {codes}, producer errors {errors or 'none'}",
        )
    )
    return verdicts


def finish(
    args: argparse.Namespace,
    report: dict[str, Any],
    samples: list[Sample],
    pipelines: list[Pipeline],
    verdicts: list[Verdict],
) -> int:
    from rich.console import Console
    from rich.table import Table

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print_samples(samples, pipelines)
    table = Table(title="verdicts")
    for column in ("goal", "", "detail"):
        table.add_column(column)
    for v in verdicts:
        mark = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "info"}[v.passed]
        table.add_row(v.goal, mark, v.detail)
    Console(width=200).print(table)
    report.update(samples=[asdict(s) for s in samples], verdicts=[asdict(v) for v in verdicts])
    (out / "soak.json").write_text(json.dumps(report, indent=1, default=str))
    title = (
        f"soak {args.duration_s / 60:.0f} min, "
        + ", ".join(f"{n} {r:,.0f}/s" for n, r in report["rates"].items())
        + f" ({args.load:.0%} of calibrated), compaction every {args.compact_every_s:.0f} s"
    )
    plot(samples, out / "soak.png", title)
    print(f"load average after: {report['load_after']}")
    print(f"wrote {out / 'soak.json'} and {out / 'soak.png'}")
    return 0 if all(v.passed is not False for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
