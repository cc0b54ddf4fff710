"""In-process progress: what this process's workers count, for live displays and /metrics.

Beam metrics are final only when a run ends; a progress display or a Prometheus
endpoint on an in-process runner (or the LOOPBACK workers of a portable one)
reads these instead. Three kinds of series, each a name and a few labels with
bounded values (source, stream, partition, table, reason, timing, result; never
a record's content):

- counts that only grow (:func:`note`): records read, rows committed per table;
- the latest value of gauges (:func:`set_gauge`): lag per partition or shard,
  source watermarks;
- histograms (:func:`observe`): seconds from a row's source timestamp to its
  commit, commit durations.

On remote runners they stay empty in the launching process, and displays say so.

>>> note("records_read", 2, source="kafka", stream="t", partition="0")
>>> LOCAL.counter("records_read", source="kafka", stream="t", partition="0") >= 2
True
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "COMMIT_SECONDS_BUCKETS",
    "LATENCY_BUCKETS",
    "LOCAL",
    "LOCAL_GAUGES",
    "LOCAL_PROGRESS",
    "Histogram",
    "Labels",
    "LocalRegistry",
    "Snapshot",
    "note",
    "observe",
    "set_gauge",
]

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
Key = tuple[str, Labels]

# Seconds from a row's source timestamp to its commit; a streaming batch waits up to
# --max_batch_latency_s (5 s by default) before its commit.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# How long one Delta commit takes (tens of milliseconds, more against object stores).
COMMIT_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    """Counts of observations at or below each upper bound (cumulative), their sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound

    def add(self, values: Sequence[float]) -> None:
        """Counts ``values`` into their buckets.

        >>> h = Histogram((1.0, 2.0)); h.add([0.5, 1.0, 1.5, 9.0]); h.cumulative()
        [2, 3, 4]
        """
        import numpy as np

        array = np.asarray(values, dtype=float)
        places = np.searchsorted(np.asarray(self.bounds), array, side="left")
        for place, number in zip(*np.unique(places, return_counts=True), strict=True):
            self.counts[int(place)] += int(number)
        self.total += float(array.sum())
        self.count += len(array)

    def cumulative(self) -> list[int]:
        """Observations at or below each bound, then all of them (Prometheus' ``+Inf``)."""
        running, out = 0, []
        for number in self.counts:
            running += number
            out.append(running)
        return out

    def copy(self) -> Histogram:
        return Histogram(self.bounds, list(self.counts), self.total, self.count)


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy of every series, for one scrape or one display line."""

    counters: Mapping[Key, float]
    gauges: Mapping[Key, float]
    histograms: Mapping[Key, Histogram]


class LocalRegistry:
    """Every series this process's workers report; safe to use from any thread."""

    def __init__(self, totals: Counter[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._counters: dict[Key, float] = {}
        self._gauges: dict[Key, float] = {}
        self._histograms: dict[Key, Histogram] = {}
        self._totals: Counter[str] = Counter() if totals is None else totals
        # (name, labels in the caller's order) → the series' key: sources note every
        # record, so sorting labels once per series, not per call, matters.
        self._keys: dict[tuple[str, tuple[tuple[str, str], ...]], Key] = {}

    def add(self, name: str, amount: float, labels: Labels) -> None:
        with self._lock:
            self._counters[(name, labels)] = self._counters.get((name, labels), 0) + amount
            self._totals[name] += int(amount)

    def note(self, name: str, amount: float, labels: Mapping[str, str]) -> None:
        """:meth:`add` with labels as given (any order)."""
        given = (name, tuple(labels.items()))
        with self._lock:
            key = self._keys.get(given)
            if key is None:
                key = self._keys[given] = (name, _labels(labels))
            self._counters[key] = self._counters.get(key, 0) + amount
            self._totals[name] += int(amount)

    def set(self, name: str, value: float, labels: Labels) -> None:
        with self._lock:
            self._gauges[(name, labels)] = value

    def observe(
        self, name: str, values: Sequence[float], labels: Labels, bounds: tuple[float, ...]
    ) -> None:
        with self._lock:
            histogram = self._histograms.setdefault((name, labels), Histogram(bounds))
            histogram.add(values)

    def counter(self, name: str, **labels: str) -> float:
        """The count of one series (0 when it was never noted)."""
        with self._lock:
            return self._counters.get((name, _labels(labels)), 0)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                dict(self._counters),
                dict(self._gauges),
                {key: h.copy() for key, h in self._histograms.items()},
            )

    def clear_gauges(self) -> None:
        """Forgets the gauges (lags, watermarks) of an earlier run in this process."""
        with self._lock:
            self._gauges.clear()


# Totals by name over all labels (the live display's record count, tests).
LOCAL_PROGRESS: Counter[str] = Counter()
LOCAL = LocalRegistry(LOCAL_PROGRESS)
# Gauges by display name, e.g. ``lag_records kafka tweets[0]`` or ``watermark_ms kinesis s``.
LOCAL_GAUGES: dict[str, int] = {}


def note(name: str, amount: float = 1, **labels: str) -> None:
    """Adds ``amount`` to the count ``name`` of the series with ``labels``."""
    LOCAL.note(name, amount, labels)


def set_gauge(name: str, value: float, **labels: str) -> None:
    """Sets the gauge ``name`` of the series with ``labels`` (source, stream, partition).

    A name without labels in the display form ``KIND SOURCE STREAM[PARTITION]`` is
    read as that kind with those labels.

    >>> set_gauge("watermark_ms pubsub projects/p/subscriptions/s", 5)
    >>> LOCAL_GAUGES["watermark_ms pubsub projects/p/subscriptions/s"]
    5
    """
    if not labels and " " in name:
        name, labels = _display_labels(name)
    LOCAL.set(name, value, _labels(labels))
    LOCAL_GAUGES[display_name(name, labels)] = int(value)


def observe(
    name: str,
    values: Iterable[float],
    *,
    bounds: tuple[float, ...] = LATENCY_BUCKETS,
    **labels: str,
) -> None:
    """Counts ``values`` into the histogram ``name`` of the series with ``labels``."""
    values = list(values)
    if values:
        LOCAL.observe(name, values, _labels(labels), bounds)


def display_name(name: str, labels: Mapping[str, str]) -> str:
    """``lag_records kafka t[0]``: a gauge's name as progress lines show it.

    >>> display_name("lag_ms", {"source": "kinesis", "stream": "s", "partition": "shard-1"})
    'lag_ms kinesis s[shard-1]'
    """
    where = f"{labels.get('source', '')} {labels.get('stream', '')}".strip()
    partition = labels.get("partition")
    return f"{name} {where}" + (f"[{partition}]" if partition else "")


def _display_labels(shown: str) -> tuple[str, dict[str, str]]:
    name, _, rest = shown.partition(" ")
    source, _, stream = rest.partition(" ")
    labels = {"source": source, "stream": stream}
    if stream.endswith("]") and "[" in stream:
        labels["stream"], _, partition = stream[:-1].rpartition("[")
        labels["partition"] = partition
    return name, labels


def _labels(labels: Mapping[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))
