"""Run summaries (from Beam metrics and the Delta tables) and a live progress display."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from beam_pipelines.launch.periodic import every
from transforms.progress import LOCAL, LOCAL_GAUGES, LOCAL_PROGRESS
from transforms.sinks.commit_metrics import table_label

__all__ = ["NoSummary", "ProgressMeter", "RunSummary", "TableStats", "progress_display"]


@dataclass(frozen=True)
class TableStats:
    """A Delta table's state after a run."""

    uri: str
    version: int | None
    files: int
    rows: int

    @classmethod
    def of(
        cls, uri: str | None, storage_options: dict[str, str] | None = None
    ) -> TableStats | None:
        if not uri:
            return None
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(uri, storage_options=storage_options)
        except TableNotFoundError:
            return cls(uri, None, 0, 0)
        return cls(
            uri,
            table.version(),
            len(table.file_uris()),
            table.to_pyarrow_dataset().count_rows(use_threads=False),
        )


# Namespaces whose counters the summary lists one by one.
_DETAIL_NAMESPACES = (
    "dataplane.windows/",
    "dataplane.parquet/",
    "dataplane.delta_merge/",
    "dataplane.quality/",
)
# The metric namespaces of our sources; each counts ``records_read``.
_SOURCES = ("kafka", "kinesis", "pubsub", "files")


@dataclass(frozen=True)
class RunSummary:
    """What a run did: records in, valid, dead letters by reason, labels, tables, speed."""

    records_in: int
    valid: int
    dead_letters: int
    dead_letters_by_reason: dict[str, int]
    labels: dict[str, int]
    rows_written: int
    rows_already_committed: int
    commits: int
    elapsed_s: float
    output: TableStats | None = None
    dlq: TableStats | None = None
    counters: dict[str, int] = field(default_factory=dict)
    source_lag: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    @property
    def events_per_s(self) -> float:
        return self.records_in / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def collect(
        cls,
        result: Any,
        *,
        output: str | None,
        dlq: str | None,
        elapsed_s: float,
        storage_options: dict[str, str] | None = None,
        stopped: bool = False,
    ) -> RunSummary | NoSummary:
        """The summary of a finished run; a :class:`NoSummary` if its runner has no metrics."""
        try:
            counters = _counters(result)
            source_lag = _source_lag(result)
        except NotImplementedError:
            return NoSummary(
                f"no run summary: {type(result).__name__} reports no metrics to this process "
                "(see the runner's own console)"
            )
        return cls(
            records_in=sum(
                counters.get(f"dataplane.{source}/records_read", 0) for source in _SOURCES
            ),
            valid=counters.get("dataplane.pipeline/valid", 0),
            dead_letters=counters.get("dataplane.pipeline/dead_letters", 0),
            dead_letters_by_reason=_group(counters, "dataplane.dead_letters/"),
            labels=_group(counters, "dataplane.labels/"),
            rows_written=counters.get("dataplane.delta/rows_written", 0),
            rows_already_committed=counters.get("dataplane.delta/rows_already_committed", 0),
            commits=counters.get("dataplane.delta/commits", 0),
            elapsed_s=elapsed_s,
            output=TableStats.of(output, storage_options),
            dlq=TableStats.of(dlq, storage_options),
            counters=counters,
            source_lag=source_lag,
            stopped=stopped,
        )

    def print(self, console: Console | None = None) -> None:
        console = console or Console()
        title = "Run summary (stopped on request)" if self.stopped else "Run summary"
        table = Table(title=title, show_header=False)
        table.add_column("what", style="bold")
        table.add_column("value", justify="right")
        table.add_row("records in", f"{self.records_in:,}")
        table.add_row("valid", f"{self.valid:,}")
        table.add_row("dead letters", f"{self.dead_letters:,}")
        for reason, count in sorted(self.dead_letters_by_reason.items()):
            table.add_row(f"  {reason}", f"{count:,}")
        for label, count in sorted(self.labels.items()):
            table.add_row(f"sentiment {label}", f"{count:,}")
        for name, count in sorted(self.counters.items()):
            if name.startswith(_DETAIL_NAMESPACES):
                table.add_row(name.removeprefix("dataplane."), f"{count:,}")
        table.add_row(
            "rows written / already in table",
            f"{self.rows_written:,} / {self.rows_already_committed:,}",
        )
        skipped = self.counters.get("dataplane.delta/commits_skipped_as_duplicate", 0)
        table.add_row("commits / skipped as duplicate", f"{self.commits:,} / {skipped:,}")
        for name, lag in sorted(self.source_lag.items()):
            table.add_row(f"lag {name}", f"{lag:,}")
        for name, stats in (("output", self.output), ("dead-letter table", self.dlq)):
            if stats is not None:
                table.add_row(
                    name,
                    f"{stats.uri}\nversion {stats.version}, "
                    f"{stats.files} files, {stats.rows:,} rows",
                )
        table.add_row("elapsed", f"{self.elapsed_s:.1f} s")
        table.add_row("events/s", f"{self.events_per_s:,.0f}")
        console.print(table)


@dataclass(frozen=True)
class NoSummary:
    """Why a run has no summary (its runner reports no metrics here)."""

    reason: str

    def print(self, console: Console | None = None) -> None:
        (console or Console()).print(self.reason)


def _counters(result: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for counter in result.metrics().query()["counters"]:
        name = f"{counter.key.metric.namespace}/{counter.key.metric.name}"
        value = counter.committed if counter.committed is not None else counter.attempted
        found[name] = found.get(name, 0) + int(value or 0)
    return found


def _source_lag(result: Any) -> dict[str, int]:
    """Last lag per partition/shard: ``kafka tweets[0] records`` or ``kinesis s[shard] ms``."""
    lags: dict[str, int] = {}
    for gauge in result.metrics().query()["gauges"]:
        namespace, name = gauge.key.metric.namespace, gauge.key.metric.name
        kind, _, where = name.partition(".")
        if not namespace.startswith("dataplane.") or kind not in ("lag_records", "lag_ms"):
            continue
        stream, _, partition = where.rpartition(".")
        value = gauge.committed if gauge.committed is not None else gauge.attempted
        unit = "records" if kind == "lag_records" else "ms"
        label = f"{namespace.removeprefix('dataplane.')} {stream}[{partition}] {unit}"
        lags[label] = int(value.value if value is not None else 0)
    return lags


def _group(counters: dict[str, int], prefix: str) -> dict[str, int]:
    return {k[len(prefix) :]: v for k, v in counters.items() if k.startswith(prefix)}


@contextlib.contextmanager
def progress_display(
    *,
    terminal: bool,
    log_every_s: float | None = None,
    tables: dict[str, str | None] | None = None,
    console: Console | None = None,
    interval_s: float = 0.25,
) -> Iterator[None]:
    """Shows a run's progress while the block runs (local runners, see transforms.progress).

    On a terminal a status line is redrawn in place; otherwise, when ``log_every_s``
    is set (streaming runs), one line is written to stderr that often.
    """
    if not terminal and not log_every_s:
        yield
        return
    console = console or Console(stderr=True)
    meter = ProgressMeter(tables or {})
    if terminal:
        with (
            console.status(meter.line()) as spinner,
            every(interval_s, lambda: spinner.update(meter.line()), name="progress-display"),
        ):
            yield
        return
    assert log_every_s is not None
    with every(
        log_every_s, lambda: console.print(meter.line(), soft_wrap=True), name="progress-lines"
    ):
        yield


class ProgressMeter:
    """One line of progress from this process's counts: rates since the last line.

    >>> from transforms.progress import LOCAL_GAUGES, note, set_gauge
    >>> meter = ProgressMeter({"output": "/lake/t"})
    >>> note("records_read", 5); note("rows_committed", 4, table="/lake/t")
    >>> set_gauge("lag_records kafka t[0]", 7); set_gauge("watermark_ms kafka t[0]", 0)
    >>> line = meter.line()
    >>> "5 records read" in line, "output 4" in line, "kafka t[0] 7 records" in line
    (True, True, True)
    >>> "watermark 1970-01-01T00:00:00Z" in line
    True
    """

    def __init__(self, tables: dict[str, str | None]) -> None:
        self._tables = {name: uri for name, uri in tables.items() if uri}
        self._start = self._last = time.monotonic()
        self._before = dict(LOCAL_PROGRESS)
        self._before_tables = {uri: self._table_count(uri) for uri in self._tables.values()}
        self._last_read = 0

    def line(self) -> str:
        now = time.monotonic()
        read = LOCAL_PROGRESS["records_read"] - self._before.get("records_read", 0)
        rate = (read - self._last_read) / max(now - self._last, 1e-9)
        self._last, self._last_read = now, read
        parts = [f"running {now - self._start:,.0f}s", f"{read:,} records read ({rate:,.0f}/s)"]
        committed = [f"{name} {self._committed(uri):,}" for name, uri in self._tables.items()]
        parts.append("rows committed: " + (", ".join(committed) or f"{self._committed(None):,}"))
        gauges = LOCAL_GAUGES.copy()  # readers add gauges while this runs
        lags = sorted(
            (name.split(" ", 1)[1], value, name.split(" ", 1)[0].removeprefix("lag_"))
            for name, value in gauges.items()
            if name.startswith("lag_")
        )
        if lags:
            parts.append(
                "lag " + ", ".join(f"{where} {value:,} {unit}" for where, value, unit in lags)
            )
        marks = [value for name, value in gauges.items() if name.startswith("watermark_ms ")]
        if marks:
            parts.append(f"watermark {_iso(min(marks))}")
        return " · ".join(parts)

    def _committed(self, uri: str | None) -> int:
        if uri is None:
            return LOCAL_PROGRESS["rows_committed"] - self._before.get("rows_committed", 0)
        return self._table_count(uri) - self._before_tables.get(uri, 0)

    @staticmethod
    def _table_count(uri: str) -> int:
        return int(LOCAL.counter("rows_committed", table=table_label(uri)))


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
