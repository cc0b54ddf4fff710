"""Every throughput benchmark of issue 15 in one table: ``python -m bench`` (``make bench``).

    python -m bench [--count 300000] [--only NAME] [--json PATH]

Each side of each pair runs in its own fresh process (``bench.sides``), so each has
its own start-up, imports and peak RSS; both sides of a pair read the same input,
made once. Rows (``--only`` takes these names):

==================  ===============================================  =========================
row                 pipeline side                                    baseline side
==================  ===============================================  =========================
``sentiment``       ``beam_pipelines.sentiment.run``, Kafka          ``loops.sentiment_loop``
``telemetry``       ``beam_pipelines.telemetry.run``, Parquet        ``loops.telemetry_loop``
``decode-avro``     ``DecodeAndValidate`` in a pipeline              fastavro alone
``decode-json``     ``DecodeAndValidate`` in a pipeline              json + fastjsonschema
``workers``         sentiment, 2 workers (multi_processing)          sentiment, 1 worker
``startup-help``    ``python -m beam_pipelines.sentiment --help``    ``import apache_beam`` [#]_
``startup-import``  ``python -c 'import beam_pipelines.sentiment'``  ``import apache_beam``
==================  ===============================================  =========================

.. [#] then ``os._exit(0)``, as the command line exits (no interpreter teardown).

Events/s of the pipeline rows count start-up (process spawn to the end of the run).
The decode rows time the decoding alone inside the process (``bench/bench_decode.py``),
pipeline construction included. Start-up rows are medians of 5, in seconds; their
ratio is floor / ours. Peak RSS is the process tree's (``bench/measure.py``); the
sentiment and telemetry pipelines also run at count/4, so a peak that grows with the
input shows. Results go to ``bench/results/throughput.json`` with the machine's facts.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pickle
import platform
import shlex
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.measure import ChildFailed, ChildRun, run_child, run_side

__all__ = ["ROWS", "Row", "main"]

RESULTS = Path(__file__).parent / "results" / "throughput.json"
PARTITIONS = 4  # even: a partition is the unit of parallelism, 2 workers read 2 each
STARTUP_RUNS = 5
VERSIONS = (
    "apache-beam",
    "pyarrow",
    "deltalake",
    "confluent-kafka",
    "vaderSentiment",
    "fastavro",
    "fastjsonschema",
)
WORKERS_FLAGS = ("--direct_num_workers=2", "--direct_running_mode=multi_processing")


@dataclass
class Row:
    """One line of the table; rates in events/s, or seconds when ``unit`` is ``s``."""

    name: str
    work: str
    pipeline: float
    baseline: float
    ratio: float
    goal: float | None
    pipeline_rss_mib: float
    baseline_rss_mib: float
    unit: str = "ev/s"
    quarter_rss_mib: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.ratio >= self.goal


class Inputs:
    """The inputs, each made once per run: Kafka topics, a Parquet replay, decode values."""

    def __init__(self, scratch: Path, stack: contextlib.ExitStack) -> None:
        self.scratch, self._stack = scratch, stack
        self._bootstrap: str | None = None
        self._topics: dict[int, str] = {}
        self._replays: dict[int, str] = {}
        self._values: dict[int, dict[str, str]] = {}

    @property
    def bootstrap(self) -> str:
        if self._bootstrap is None:
            from runners.local.broker import LocalKafkaBroker

            broker = self._stack.enter_context(LocalKafkaBroker())
            self._bootstrap = broker.bootstrap_servers
        return self._bootstrap

    def tweets(self, count: int) -> str:
        """A topic holding ``count`` tweets, 5 % malformed."""
        if count not in self._topics:
            from beam_pipelines.feeds.kafka import produce
            from beam_pipelines.feeds.tweets import generate_tweets

            topic = f"tweets-{count}"
            messages = generate_tweets(count, bad_ratio=0.05)
            produce(self.bootstrap, topic, messages, partitions=PARTITIONS)
            self._topics[count] = topic
        return self._topics[count]

    def telemetry(self, count: int) -> str:
        """A Parquet replay file of ``count`` readings (as bench_telemetry makes it)."""
        if count not in self._replays:
            from beam_pipelines.feeds.publish import publish
            from beam_pipelines.feeds.telemetry import generate_telemetry

            path = self.scratch / f"telemetry-{count}.parquet"
            messages = generate_telemetry(
                count, vehicles=50, bad_ratio=0.02, physics_bad_ratio=0.02, max_delay_ms=30_000
            )
            publish(f"file://{path}", messages)
            self._replays[count] = str(path)
        return self._replays[count]

    def decode_values(self, count: int) -> dict[str, str]:
        """Pickled Confluent-framed values by subject (bench_decode's inputs)."""
        if count not in self._values:
            from bench.bench_decode import decode_inputs

            avro, tweets = decode_inputs(count)
            paths = {}
            for subject, values in (("vehicle_telemetry", avro), ("tweet", tweets)):
                path = self.scratch / f"{subject}-{count}.pickle"
                path.write_bytes(pickle.dumps(values))
                paths[subject] = str(path)
            self._values[count] = paths
        return self._values[count]

    def lake(self, name: str) -> str:
        path = self.scratch / "lake" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)


def _rate(run: ChildRun, expected: int, side: str, warnings: list[str]) -> float:
    records = run.result.get("records")
    if records is None:
        warnings.append(f"{side}: reported no record count; rate uses the input count {expected}")
        records = expected
    elif records != expected:
        warnings.append(f"{side}: read {records} records, the input holds {expected}")
    return records / run.seconds


def _delta_rows(path: str) -> int | None:
    from deltalake import DeltaTable

    try:
        actions = DeltaTable(path).get_add_actions(flatten=True)
    except Exception:
        return None
    return sum(n or 0 for n in actions.column("num_records").to_pylist())


def _check_tables(lake: str, expected: int, side: str, warnings: list[str]) -> dict[str, Any]:
    """Output rows + dead letters must add up to the input: else the sides did not do
    the same work."""
    rows, dead = _delta_rows(f"{lake}/output"), _delta_rows(f"{lake}/dlq")
    if rows is None or (rows or 0) + (dead or 0) != expected:
        warnings.append(
            f"{side}: {rows} rows + {dead} dead letters in its tables, the input holds {expected}"
        )
    return {"rows": rows, "dead_letters": dead}


def _check_columns(warnings: list[str]) -> None:
    from beam_pipelines.sentiment import SENTIMENT_SCHEMA
    from bench.loops import SENTIMENT_COLUMNS

    if not SENTIMENT_COLUMNS.equals(SENTIMENT_SCHEMA):
        warnings.append(
            "bench.loops.SENTIMENT_COLUMNS differs from beam_pipelines.sentiment."
            "SENTIMENT_SCHEMA: the loop writes other columns than the pipeline"
        )


def _details(**runs: ChildRun) -> dict[str, Any]:
    return {
        name: {"seconds": round(run.seconds, 3), "peak_rss_mib": round(run.peak_rss_mib, 1)}
        | {k: v for k, v in run.result.items() if k != "finished_at"}
        for name, run in runs.items()
    }


def sentiment_row(inputs: Inputs, count: int) -> Row:
    warnings: list[str] = []
    _check_columns(warnings)
    topic, quarter = inputs.tweets(count), inputs.tweets(max(count // 4, 1))
    lakes = {side: inputs.lake(f"sentiment-{side}") for side in ("pipeline", "loop", "quarter")}
    pipeline = run_side("sentiment-pipeline", inputs.bootstrap, topic, lakes["pipeline"])
    loop = run_side("sentiment-loop", inputs.bootstrap, topic, str(PARTITIONS), lakes["loop"])
    small = run_side("sentiment-pipeline", inputs.bootstrap, quarter, lakes["quarter"])
    a, b = _rate(pipeline, count, "pipeline", warnings), _rate(loop, count, "loop", warnings)
    details = _details(pipeline=pipeline, loop=loop, pipeline_quarter=small)
    details["pipeline"]["tables"] = _check_tables(lakes["pipeline"], count, "pipeline", warnings)
    details["loop"]["tables"] = _check_tables(lakes["loop"], count, "loop", warnings)
    if details["pipeline"]["tables"] != details["loop"]["tables"]:
        warnings.append(
            f"the sides' tables differ: pipeline {details['pipeline']['tables']}, "
            f"loop {details['loop']['tables']}"
        )
    return Row(
        "sentiment",
        f"sentiment, {count:,} tweets vs hand loop",
        a,
        b,
        a / b,
        0.8,
        pipeline.peak_rss_mib,
        loop.peak_rss_mib,
        quarter_rss_mib=small.peak_rss_mib,
        details=details,
        warnings=warnings,
    )


def telemetry_row(inputs: Inputs, count: int) -> Row:
    warnings: list[str] = []
    source, quarter = inputs.telemetry(count), inputs.telemetry(max(count // 4, 1))
    pipeline = run_side("telemetry-pipeline", source, inputs.lake("telemetry-pipeline"))
    loop = run_side("telemetry-loop", source, inputs.lake("telemetry-loop"))
    small = run_side("telemetry-pipeline", quarter, inputs.lake("telemetry-quarter"))
    a, b = _rate(pipeline, count, "pipeline", warnings), _rate(loop, count, "loop", warnings)
    return Row(
        "telemetry",
        f"telemetry, {count:,} readings vs hand loop",
        a,
        b,
        a / b,
        0.5,
        pipeline.peak_rss_mib,
        loop.peak_rss_mib,
        quarter_rss_mib=small.peak_rss_mib,
        details=_details(pipeline=pipeline, loop=loop, pipeline_quarter=small),
        warnings=warnings,
    )


def _decode_row(name: str, subject: str, library: str) -> Callable[[Inputs, int], Row]:
    def row(inputs: Inputs, count: int) -> Row:
        path = inputs.decode_values(count)[subject]
        pipeline = run_side("decode-pipeline", subject, path)
        bare = run_side("decode-bare", subject, path)
        a = pipeline.result["records"] / pipeline.result["seconds"]
        b = bare.result["records"] / bare.result["seconds"]
        return Row(
            name,
            f"decode {subject}, {count:,} in a pipeline vs {library}",
            a,
            b,
            a / b,
            0.7,
            pipeline.peak_rss_mib,
            bare.peak_rss_mib,
            details=_details(pipeline=pipeline, bare=bare),
        )

    return row


def workers_row(inputs: Inputs, count: int) -> Row:
    warnings: list[str] = []
    topic = inputs.tweets(count)
    one = run_side("sentiment-pipeline", inputs.bootstrap, topic, inputs.lake("workers-1"))
    two_lake = inputs.lake("workers-2")
    two = run_side("sentiment-pipeline", inputs.bootstrap, topic, two_lake, *WORKERS_FLAGS)
    a, b = _rate(two, count, "2 workers", warnings), _rate(one, count, "1 worker", warnings)
    details = _details(two_workers=two, one_worker=one)
    details["two_workers"]["tables"] = _check_tables(two_lake, count, "2 workers", warnings)
    return Row(
        "workers",
        f"sentiment, {count:,} tweets: 2 workers vs 1",
        a,
        b,
        a / b,
        1.6,
        two.peak_rss_mib,
        one.peak_rss_mib,
        details=details,
        warnings=warnings,
    )


def _median_wall(argv: list[str]) -> tuple[float, float, list[float]]:
    """Median seconds over STARTUP_RUNS runs, the largest peak RSS, and every time."""
    times, peaks = [], []
    for _ in range(STARTUP_RUNS):
        spawned, exited, peak = run_child(argv, timeout_s=300)
        times.append(exited - spawned)
        peaks.append(peak)
    return statistics.median(times), max(peaks), times


def _startup_row(
    name: str, work: str, argv: list[str], floor: list[str]
) -> Callable[[Inputs, int], Row]:
    def row(inputs: Inputs, count: int) -> Row:
        ours, ours_rss, ours_times = _median_wall(argv)
        least, least_rss, least_times = _median_wall(floor)
        return Row(
            name,
            work,
            ours,
            least,
            least / ours,
            None,
            ours_rss,
            least_rss,
            unit="s",
            details={
                "command": shlex.join(argv),
                "times": ours_times,
                "floor_command": shlex.join(floor),
                "floor_times": least_times,
            },
        )

    return row


# The floor of a Beam pipeline's start-up: importing Beam. The command line ends with
# os._exit (beam_pipelines.launch.exiting), which skips the interpreter's teardown
# (0.5 s or more after Beam's imports), so its floor skips it too.
_IMPORT_BEAM = [sys.executable, "-c", "import apache_beam"]
_IMPORT_BEAM_EXIT = [sys.executable, "-c", "import os, apache_beam; os._exit(0)"]


ROWS: dict[str, Callable[[Inputs, int], Row]] = {
    "sentiment": sentiment_row,
    "telemetry": telemetry_row,
    "decode-avro": _decode_row("decode-avro", "vehicle_telemetry", "fastavro"),
    "decode-json": _decode_row("decode-json", "tweet", "json + fastjsonschema"),
    "workers": workers_row,
    "startup-help": _startup_row(
        "startup-help",
        "startup: sentiment --help vs import apache_beam + os._exit",
        [sys.executable, "-m", "beam_pipelines.sentiment", "--help"],
        _IMPORT_BEAM_EXIT,
    ),
    "startup-import": _startup_row(
        "startup-import",
        "startup: import beam_pipelines.sentiment vs import apache_beam",
        [sys.executable, "-c", "import beam_pipelines.sentiment"],
        _IMPORT_BEAM,
    ),
}


def _value(value: float, unit: str) -> str:
    return f"{value:.2f} s" if unit == "s" else f"{value:,.0f}"


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    header = (
        "| work | pipeline ev/s | baseline ev/s | ratio | goal | "
        "RSS pipeline MiB | RSS baseline MiB | RSS pipeline at count/4 MiB |"
    )
    lines = [header, "|---|---:|---:|---:|---|---:|---:|---:|"]
    for row in rows:
        goal = "—" if row.goal is None else f"≥ {row.goal} {'met' if row.met else 'NOT met'}"
        quarter = "—" if row.quarter_rss_mib is None else f"{row.quarter_rss_mib:,.0f}"
        lines.append(
            f"| {row.work} | {_value(row.pipeline, row.unit)} | {_value(row.baseline, row.unit)} "
            f"| {row.ratio:.2f} | {goal} | {row.pipeline_rss_mib:,.0f} "
            f"| {row.baseline_rss_mib:,.0f} | {quarter} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """The facts a figure depends on: cores, platform, Python, library versions."""
    versions: dict[str, str | None] = {}
    for name in VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 4:
        raise argparse.ArgumentTypeError(f"must be at least 4, got {value}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Every throughput ratio of issue 15 in one table, with peak RSS.",
    )
    parser.add_argument(
        "--count", type=_positive, default=300_000, help="records per run (default 300,000)"
    )
    parser.add_argument("--only", choices=list(ROWS), help="run one row")
    parser.add_argument(
        "--json", type=Path, default=RESULTS, help=f"results file (default {RESULTS})"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(given)
    names = [args.only] if args.only else list(ROWS)
    started = datetime.datetime.now(datetime.timezone.utc)
    rows: list[Row] = []
    failed: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-") as scratch,
        contextlib.ExitStack() as stack,
    ):
        inputs = Inputs(Path(scratch), stack)
        for name in names:
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                rows.append(ROWS[name](inputs, args.count))
            except ChildFailed as err:
                print(f"{name} failed: {err}", file=sys.stderr)
                failed.append(name)
    print(table(rows))
    for row in rows:
        for warning in row.warnings:
            print(f"warning: {row.name}: {warning}")
    report = {
        "machine": machine(),
        "date": started.isoformat(timespec="seconds"),
        "command": shlex.join(["python", "-m", "bench", *given]),
        "count": args.count,
        "timing": (
            "pipeline rows: from spawning the process to the end of the run (start-up, "
            "imports and the build included), both sides; decode rows: the decoding alone "
            "inside the process (the pipeline's build included); start-up rows: median "
            f"seconds of {STARTUP_RUNS} runs, ratio floor / ours"
        ),
        "peak_rss": (
            "MiB; the larger of each process's VmHWM and the largest sum of the process "
            "tree's VmRSS, sampled every 50 ms (bench/measure.py)"
        ),
        "rows": [asdict(row) | {"met": row.met} for row in rows],
        "failed": failed,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {args.json}")
    if failed:
        print(f"failed: {', '.join(failed)} (their output is above)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
