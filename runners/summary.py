"""Run summaries (from Beam metrics and the Delta tables) and a live progress display."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from transforms.progress import LOCAL_PROGRESS

__all__ = ["RunSummary", "TableStats", "progress_display"]


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
            uri, table.version(), len(table.file_uris()), table.to_pyarrow_dataset().count_rows()
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
    ) -> RunSummary:
        counters = _counters(result)
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
            source_lag=_source_lag(result),
        )

    def print(self, console: Console | None = None) -> None:
        console = console or Console()
        table = Table(title="Run summary", show_header=False)
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
def progress_display(*, enabled: bool, console: Console | None = None) -> Iterator[None]:
    """Shows records read and rows committed while the block runs (local runners)."""
    if not enabled:
        yield
        return
    console = console or Console(stderr=True)
    stop = threading.Event()
    start, before = time.monotonic(), dict(LOCAL_PROGRESS)

    def status() -> str:
        read = LOCAL_PROGRESS["records_read"] - before.get("records_read", 0)
        landed = LOCAL_PROGRESS["rows_committed"] - before.get("rows_committed", 0)
        return (
            f"running {time.monotonic() - start:5.1f}s · {read:,} records read · "
            f"{landed:,} rows committed"
        )

    with console.status(status()) as spinner:

        def refresh() -> None:
            while not stop.wait(0.25):
                spinner.update(status())

        thread = threading.Thread(target=refresh, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
