"""A Prometheus ``/metrics`` endpoint over this process's progress (``--metrics_port``).

Each scrape reads :data:`transforms.progress.LOCAL`, which the sources, sinks,
windows and quality checks of in-process workers (local runners, the LOOPBACK
workers of PortableRunner) fill as they go. Names follow Prometheus' conventions:
a ``dataplane_`` prefix, base units (seconds), ``_total`` on counters, and label
values from a bounded set (source, stream, partition or shard, table, reason,
timing, result), never from a record.
"""

from __future__ import annotations

import contextlib
import errno
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from schemas.errors import ConfigError
from transforms.progress import LOCAL, Histogram, Labels, LocalRegistry, Snapshot

__all__ = ["FAMILIES", "Family", "ProgressCollector", "scrape_lines", "serve_metrics"]


@dataclass(frozen=True)
class Family:
    """How one progress series is exported: its Prometheus name, type, help and scale."""

    name: str
    kind: str  # "counter", "gauge" or "histogram"
    help: str
    scale: float = 1.0  # multiplies each value (milliseconds → seconds)


FAMILIES: Mapping[str, Family] = {
    "records_read": Family(
        "dataplane_records_read",
        "counter",
        "Records read from a source, by source, stream (topic, stream, subscription) and "
        "partition (Kafka partition, Kinesis shard).",
    ),
    "rows_committed": Family(
        "dataplane_rows_committed",
        "counter",
        "Rows committed to a Delta table that were not in it yet (dead-letter tables too; "
        "a merge's inserted rows).",
    ),
    "rows_already_committed": Family(
        "dataplane_rows_already_committed",
        "counter",
        "Rows a commit found already in the table (a retry or a rerun) and left out.",
    ),
    "rows_updated": Family(
        "dataplane_rows_updated",
        "counter",
        "Rows an upsert (merge) replaced in a Delta table (telemetry's aggregates).",
    ),
    "dead_letters_committed": Family(
        "dataplane_dead_letters_committed",
        "counter",
        "Dead letters committed to a dead-letter table, by reason (error type).",
    ),
    "commits": Family(
        "dataplane_commits", "counter", "Delta commits that made a new table version."
    ),
    "commit_seconds": Family(
        "dataplane_commit_duration_seconds",
        "histogram",
        "How long one batch's Delta commit took, retries after conflicts included.",
    ),
    "commit_latency_seconds": Family(
        "dataplane_commit_latency_seconds",
        "histogram",
        "Seconds from a row's source timestamp (Kafka message timestamp, Kinesis arrival "
        "time, Pub/Sub publish time, or the pipeline's event time) to the commit that made "
        "it visible.",
    ),
    "lag_records": Family(
        "dataplane_source_lag_records",
        "gauge",
        "Records between a Kafka partition's read position and its end.",
    ),
    "lag_ms": Family(
        "dataplane_source_lag_seconds",
        "gauge",
        "How far a Kinesis shard's reader is behind the tip of the stream (MillisBehindLatest).",
        scale=0.001,
    ),
    "watermark_ms": Family(
        "dataplane_source_watermark_seconds",
        "gauge",
        "A source's output watermark (Unix time, seconds), per partition or shard where "
        "the source keeps one per partition.",
        scale=0.001,
    ),
    "window_panes": Family(
        "dataplane_window_panes",
        "counter",
        "Window panes emitted, by timing (early, on_time, late).",
    ),
    "quality_batches": Family(
        "dataplane_quality_batches",
        "counter",
        "Committed batches checked against the Great Expectations suite, by result.",
    ),
}
_DELAY = Family(
    "dataplane_watermark_delay_seconds",
    "gauge",
    "Wall-clock time minus the lowest source watermark: how far event time lags behind.",
)


class ProgressCollector(Collector):
    """Turns a :class:`~transforms.progress.LocalRegistry` into Prometheus metric families."""

    def __init__(self, registry: LocalRegistry = LOCAL) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        snapshot = self._registry.snapshot()
        yield from _families(snapshot)
        watermarks = [v for (name, _), v in snapshot.gauges.items() if name == "watermark_ms"]
        if watermarks:
            delay = GaugeMetricFamily(_DELAY.name, _DELAY.help)
            delay.add_metric([], max(time.time() - min(watermarks) / 1000, 0.0))
            yield delay


def _families(snapshot: Snapshot) -> Iterator[Metric]:
    by_name: dict[str, dict[Labels, Any]] = {}
    for source in (snapshot.counters, snapshot.gauges, snapshot.histograms):
        for (name, labels), value in source.items():
            by_name.setdefault(name, {})[labels] = value
    for name in sorted(by_name):
        family = FAMILIES.get(name) or _unknown(name, snapshot)
        yield _metric(family, by_name[name])


def _unknown(name: str, snapshot: Snapshot) -> Family:
    """A series no one described: exported under its own name, typed by its kind."""
    kinds = {n: "counter" for n, _ in snapshot.counters} | {n: "gauge" for n, _ in snapshot.gauges}
    kinds |= {n: "histogram" for n, _ in snapshot.histograms}
    return Family(f"dataplane_{name}", kinds[name], f"dataplane progress series {name}.")


def _metric(family: Family, series: Mapping[Labels, Any]) -> Metric:
    names = sorted({key for labels in series for key, _ in labels})
    metric: Any
    if family.kind == "counter":
        metric = CounterMetricFamily(family.name, family.help, labels=names)
    elif family.kind == "gauge":
        metric = GaugeMetricFamily(family.name, family.help, labels=names)
    else:
        metric = HistogramMetricFamily(family.name, family.help, labels=names)
    for labels, value in sorted(series.items()):
        values = [dict(labels).get(key, "") for key in names]
        if isinstance(value, Histogram):
            metric.add_metric(values, _buckets(value), sum_value=value.total)
        else:
            metric.add_metric(values, value * family.scale)
    return metric


def _buckets(histogram: Histogram) -> list[tuple[str, float]]:
    bounds = [*(repr(float(b)) for b in histogram.bounds), "+Inf"]
    return list(zip(bounds, (float(c) for c in histogram.cumulative()), strict=True))


@contextlib.contextmanager
def serve_metrics(
    port: int | None, *, address: str = "127.0.0.1", registry: LocalRegistry = LOCAL
) -> Iterator[int | None]:
    """Serves ``/metrics`` on ``address:port`` while the block runs; yields the port.

    ``port`` 0 picks a free port (printed to stderr); None serves nothing.

    Raises:
        ConfigError: naming ``--metrics_port`` when the port is in use or cannot be bound.
    """
    if port is None:
        yield None
        return
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(ProgressCollector(registry))
    try:
        server, thread = start_http_server(port, addr=address, registry=collectors)
    except OSError as err:
        raise ConfigError("--metrics_port", _bind_error(port, address, err)) from None
    bound = int(server.server_address[1])
    print(f"metrics: http://{_host(address)}:{bound}/metrics", file=sys.stderr, flush=True)
    try:
        yield bound
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _bind_error(port: int, address: str, err: OSError) -> str:
    if err.errno == errno.EADDRINUSE:
        return f"port {port} is in use on {address}; pick another (0: any free port)"
    return f"cannot serve on {address}:{port}: {err.strerror or err}"


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def scrape_lines(text: str, prefixes: Iterable[str] = ("dataplane_",)) -> list[str]:
    """The sample lines of an exposition ``text`` whose names start with ``prefixes``.

    >>> scrape_lines("# HELP x\\ndataplane_a_total 1.0\\nother 2\\n")
    ['dataplane_a_total 1.0']
    """
    starts = tuple(prefixes)
    return [line for line in text.splitlines() if line.startswith(starts)]
