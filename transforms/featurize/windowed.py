"""WindowedAggregate: per-key event-time window aggregates where late data is never lost.

Beam's own windowed GroupByKey drops records that arrive after a window's allowed
lateness without a trace. This transform keeps the window bookkeeping itself, in
per-key state of a stateful DoFn (portable: every runner supports state and
event-time timers), so that each record is accounted for exactly once: it is
added to its window's aggregate, or it is written to the ``too_late`` output.

Firing, per key and window (fixed or sliding):

* EARLY panes: optionally after every ``early_after_count`` new records, before
  the watermark reaches the end of the window.
* the ON_TIME pane: when the watermark passes the end of the window.
* LATE panes: one per record that arrives after the ON_TIME pane but before the
  window's end plus the allowed lateness, which updates the aggregate.
* after the end plus the allowed lateness the window is closed: a record for it
  goes to ``too_late``.

Panes accumulate: each pane carries the aggregate of every record of the window so
far, so the last pane is the answer and a sink can upsert on (key, window_start).

On a stop (Ctrl-C, see :mod:`transforms.stop`) windows the sources' watermark had
not passed when the stop was asked for are left unfired rather than emitted
incomplete: the next run reads their records again and fires them when complete.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder, VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.userstate import (
    ReadModifyWriteStateSpec,
    TimeDomain,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import GlobalWindows, TimestampedValue
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from schemas.errors import ConfigError
from transforms.batches import Batch, is_batched
from transforms.progress import note
from transforms.stop import stop_requested, watermark_at_stop_ms

__all__ = ["TOO_LATE_TAG", "WindowedAggregate", "window_starts"]

TOO_LATE_TAG = "too_late"
_NEVER = -(2**62)

# The input watermark of a stage is one for all its keys, so a timer fired for any
# key in this process proves the watermark passed that time for every key here.
# Per-key state alone would let a key's first record look on time however late it
# is. Keyed by a per-transform id; runners may rebuild DoFn instances per bundle.
_STAGE_WATERMARKS: dict[str, int] = {}
_STAGE_WATERMARKS_LOCK = threading.Lock()


def window_starts(ms: int, size_ms: int, period_ms: int) -> list[int]:
    """Starts of the windows (of ``size_ms``, one every ``period_ms``) holding ``ms``.

    Fixed windows are the case ``period_ms == size_ms``.

    >>> window_starts(301_000, 300_000, 300_000)
    [300000]
    >>> window_starts(301_000, 300_000, 60_000)
    [300000, 240000, 180000, 120000, 60000]
    """
    last = ms - ms % period_ms
    return list(range(last, ms - size_ms, -period_ms))


@dataclass
class _Window:
    """One open window of one key: its accumulator and firing history."""

    start_ms: int
    end_ms: int
    accumulator: Any
    records: int = 0
    new_records: int = 0
    panes: int = 0
    on_time_fired: bool = False
    last_ts_ms: int = field(default=_NEVER)

    @property
    def max_timestamp_ms(self) -> int:
        return self.end_ms - 1


@dataclass(frozen=True)
class _Spec:
    key_field: str
    size_ms: int
    period_ms: int
    lateness_ms: int
    early_after_count: int | None


class _WindowedAggregateDoFn(beam.DoFn):
    WINDOWS = ReadModifyWriteStateSpec("windows", PickleCoder())
    WATERMARK = ReadModifyWriteStateSpec("watermark_ms", VarIntCoder())
    TIMER_AT = ReadModifyWriteStateSpec("timer_ms", VarIntCoder())
    DEADLINE = TimerSpec("deadline", TimeDomain.WATERMARK)

    def __init__(self, spec: _Spec, combine_fn: beam.CombineFn) -> None:
        self._spec, self._combine = spec, combine_fn
        self._stage_id = uuid.uuid4().hex
        self._too_late = Metrics.counter("dataplane.windows", "records_too_late")
        self._records = Metrics.counter("dataplane.windows", "records_aggregated")
        self._unfired = Metrics.counter("dataplane.windows", "timers_skipped_on_stop")
        self._panes = {
            timing: Metrics.counter("dataplane.windows", f"panes_{timing.lower()}")
            for timing in ("EARLY", "ON_TIME", "LATE")
        }

    def setup(self) -> None:
        self._combine.setup()

    def process(
        self,
        element: tuple[Any, Batch],
        windows_state: Any = beam.DoFn.StateParam(WINDOWS),
        watermark_state: Any = beam.DoFn.StateParam(WATERMARK),
        timer_at: Any = beam.DoFn.StateParam(TIMER_AT),
        deadline: Any = beam.DoFn.TimerParam(DEADLINE),
    ) -> Iterator[Any]:
        # A pack of one key's (event time ms, row) readings of a bundle, in arrival
        # order (see _PackReadings): state is read and written once per pack, each
        # reading is judged on its own as if it came alone.
        key, readings = element
        watermark_ms = max(watermark_state.read() or _NEVER, _seen_watermark(self._stage_id))
        windows: dict[int, _Window] = windows_state.read() or {}
        spec = self._spec
        for ts_ms, row in readings:
            for start in window_starts(ts_ms, spec.size_ms, spec.period_ms):
                end = start + spec.size_ms
                if end - 1 + spec.lateness_ms <= watermark_ms and start not in windows:
                    self._too_late.inc()
                    late = _too_late_row(row, start, end, watermark_ms)
                    yield TaggedOutput(TOO_LATE_TAG, TimestampedValue(late, ts_ms / 1000))
                    continue
                window = windows.get(start) or self._open(start, end, watermark_ms)
                windows[start] = window
                self._add(window, row, ts_ms)
                if window.on_time_fired:
                    yield self._pane(key, window, "LATE", watermark_ms)
                elif spec.early_after_count and window.new_records >= spec.early_after_count:
                    yield self._pane(key, window, "EARLY", watermark_ms)
        windows_state.write(windows)
        self._arm(windows, timer_at, deadline)

    @on_timer(DEADLINE)
    def on_deadline(
        self,
        key: Any = beam.DoFn.KeyParam,
        fired: Any = beam.DoFn.TimestampParam,
        windows_state: Any = beam.DoFn.StateParam(WINDOWS),
        watermark_state: Any = beam.DoFn.StateParam(WATERMARK),
        timer_at: Any = beam.DoFn.StateParam(TIMER_AT),
        deadline: Any = beam.DoFn.TimerParam(DEADLINE),
    ) -> Iterator[Any]:
        fired_ms = fired.micros // 1000
        if stop_requested() and fired_ms > (watermark_at_stop_ms() or _NEVER):
            # A stop pushes the watermark to the end: windows the sources had not
            # reached are not complete. They stay unfired; the next run computes them.
            self._unfired.inc()
            return
        watermark_ms = max(
            watermark_state.read() or _NEVER, _see_watermark(self._stage_id, fired_ms)
        )
        watermark_state.write(watermark_ms)
        windows: dict[int, _Window] = windows_state.read() or {}
        for start in sorted(windows):
            window = windows[start]
            if not window.on_time_fired and window.max_timestamp_ms <= watermark_ms:
                window.on_time_fired = True
                yield self._pane(key, window, "ON_TIME", watermark_ms)
            if window.max_timestamp_ms + self._spec.lateness_ms <= watermark_ms:
                del windows[start]
        windows_state.write(windows)
        timer_at.clear()
        self._arm(windows, timer_at, deadline)

    def _open(self, start: int, end: int, watermark_ms: int) -> _Window:
        window = _Window(start, end, self._combine.create_accumulator())
        # A window first seen after the watermark passed its end has missed its
        # ON_TIME firing: its panes are LATE from the first.
        window.on_time_fired = window.max_timestamp_ms <= watermark_ms
        return window

    def _add(self, window: _Window, row: dict[str, Any], ts_ms: int) -> None:
        window.accumulator = self._combine.add_input(window.accumulator, row)
        window.records += 1
        window.new_records += 1
        window.last_ts_ms = max(window.last_ts_ms, ts_ms)
        self._records.inc()

    def _arm(self, windows: dict[int, _Window], timer_at: Any, deadline: Any) -> None:
        """Sets the timer to the earliest pending firing or closing of an open window."""
        if not windows:
            return
        due = min(
            w.max_timestamp_ms + (self._spec.lateness_ms if w.on_time_fired else 0)
            for w in windows.values()
        )
        current = timer_at.read()
        if current is None or due < current:
            deadline.set(Timestamp(micros=due * 1000))
            timer_at.write(due)

    def _pane(self, key: Any, window: _Window, timing: str, watermark_ms: int) -> Any:
        self._panes[timing].inc()
        note("window_panes", timing=timing.lower())
        row = {
            self._spec.key_field: key,
            **self._combine.extract_output(window.accumulator),
            "window_start_ms": window.start_ms,
            "window_end_ms": window.end_ms,
            "pane_timing": timing,
            "pane_index": window.panes,
            "pane_records": window.new_records,
            "window_records": window.records,
            "watermark_ms": None if watermark_ms == _NEVER else watermark_ms,
        }
        window.panes += 1
        window.new_records = 0
        return TimestampedValue(row, Timestamp(micros=window.max_timestamp_ms * 1000))


class _PackReadings(beam.DoFn):
    """``(key, [(event time ms, row), ...])`` packs per key and window of each bundle.

    A row's event time is its timestamp; in a :class:`~transforms.batches.Batch`
    (keyed by :func:`_keyed`) it is the row's ``_event_time_ms``.
    """

    def start_bundle(self) -> None:
        self._packs: dict[tuple[str, Any], tuple[Timestamp, Batch]] = {}

    def process(
        self,
        element: tuple[str, Any],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> None:
        key, value = element
        oldest, pack = self._packs.get((key, window), (timestamp, None))
        if pack is None:
            pack = Batch()
        if isinstance(value, Batch):
            pack.extend((row["_event_time_ms"], row) for row in value)
        else:
            pack.append((timestamp.micros // 1000, value))
        self._packs[(key, window)] = (min(oldest, timestamp), pack)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for (key, window), (oldest, pack) in self._packs.items():
            yield WindowedValue((key, pack), oldest, (window,))
        self._packs = {}


def _keyed(element: Any, key_field: str) -> Iterator[tuple[str, Any]]:
    """``(key, row)``; for a batch, its rows split by key, in order within each key."""
    if not isinstance(element, Batch):
        yield str(element[key_field]), element
        return
    by_key: dict[str, Batch] = {}
    for row in element:
        by_key.setdefault(str(row[key_field]), Batch()).append(row)
    yield from by_key.items()


def _seen_watermark(stage_id: str) -> int:
    return _STAGE_WATERMARKS.get(stage_id, _NEVER)


def _see_watermark(stage_id: str, fired_ms: int) -> int:
    """Records that the stage's watermark passed ``fired_ms``; returns the highest seen."""
    with _STAGE_WATERMARKS_LOCK:
        seen = max(_STAGE_WATERMARKS.get(stage_id, _NEVER), fired_ms)
        _STAGE_WATERMARKS[stage_id] = seen
    return seen


def _too_late_row(row: dict[str, Any], start: int, end: int, watermark_ms: int) -> dict[str, Any]:
    return {**row, "window_start_ms": start, "window_end_ms": end, "watermark_ms": watermark_ms}


class WindowedAggregate(beam.PTransform):
    """Aggregates rows per key over fixed or sliding event-time windows.

    Input rows must carry their event time as the Beam timestamp (see
    :class:`~transforms.featurize.ExtractEventTime`); rows in a
    :class:`~transforms.batches.Batch` carry it in ``_event_time_ms``. Each bundle's
    rows are packed per key before the stateful step, so a key's state is read and
    written once per bundle; each row is still judged (too late or not) on its own.

    Each output pane is a row of the key, the ``combine_fn`` output, and
    completeness columns:
    ``window_start_ms``, ``window_end_ms``, ``pane_timing`` (EARLY, ON_TIME, LATE),
    ``pane_index`` (0, 1, ... per window), ``pane_records`` (records new in this
    pane), ``window_records`` (records in the window so far) and ``watermark_ms``
    (the watermark known to have passed when the pane fired; a lower bound, None
    before the first timer of the key fired).

    Args:
        key_field: the field rows are grouped by (its value as text is the key).
        combine_fn: a Beam ``CombineFn`` over rows whose output is a dict.
        size_s: window length in seconds.
        period_s: start a window every ``period_s`` seconds (sliding windows);
            None for fixed windows.
        allowed_lateness_s: how long after a window's end late records still update it.
        early_after_count: fire an EARLY pane after this many new records; None: never.

    Returns:
        ``(panes, too_late)``: aggregate rows, and the rows that came after their
        window closed (with ``window_start_ms``, ``window_end_ms``, ``watermark_ms``).

    Raises:
        ConfigError: a non-positive size or period, a period above the size or not
            dividing it, a negative lateness, a non-positive early count.

    Example:
        >>> import apache_beam as beam
        >>> from apache_beam.transforms.window import TimestampedValue
        >>> from transforms.featurize.vehicle import SpeedStats
        >>> rows = [{"vehicle_id": "v1", "speed_kph": s, "engine_temp_c": 90.0,
        ...          "geohash": "u33dc", "ts_ms": t} for s, t in [(40, 1_000), (60, 2_000)]]
        >>> with beam.Pipeline() as p:
        ...     panes, late = (p | beam.Create(rows)
        ...                      | beam.Map(lambda r: TimestampedValue(r, r["ts_ms"] / 1000))
        ...                      | WindowedAggregate("vehicle_id", SpeedStats(), size_s=300))
        ...     _ = panes | beam.Map(lambda r: print(r["vehicle_id"], r["avg_speed_kph"],
        ...                                          r["pane_timing"], r["window_records"]))
        v1 50.0 ON_TIME 2
    """

    def __init__(
        self,
        key_field: str,
        combine_fn: beam.CombineFn,
        *,
        size_s: float = 300,
        period_s: float | None = None,
        allowed_lateness_s: float = 0,
        early_after_count: int | None = None,
    ) -> None:
        super().__init__()
        self._spec = _window_spec(key_field, size_s, period_s, allowed_lateness_s)
        if early_after_count is not None and early_after_count <= 0:
            raise ConfigError("early_after_count", f"must be positive, got {early_after_count}")
        self._spec = _Spec(**{**self._spec.__dict__, "early_after_count": early_after_count})
        self._combine = combine_fn

    def expand(self, rows: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        key = self._spec.key_field
        key_by = beam.FlatMap(_keyed, key).with_output_types(
            beam.typehints.KV[str, Batch] if is_batched(rows) else beam.typehints.KV[str, Any]
        )
        return (
            rows
            | "KeyBy" >> key_by
            | "PackPerKey"
            >> beam.ParDo(_PackReadings()).with_output_types(beam.typehints.KV[str, Batch])
            | "IntoGlobalWindow" >> beam.WindowInto(GlobalWindows())
            | "Aggregate"
            >> beam.ParDo(_WindowedAggregateDoFn(self._spec, self._combine)).with_outputs(
                TOO_LATE_TAG, main="panes"
            )
        )

    def display_data(self) -> dict[str, Any]:
        spec = self._spec
        return {
            "key_field": spec.key_field,
            "size_s": spec.size_ms / 1000,
            "period_s": spec.period_ms / 1000,
            "allowed_lateness_s": spec.lateness_ms / 1000,
            "early_after_count": spec.early_after_count or 0,
        }


def _window_spec(key: str, size_s: float, period_s: float | None, lateness_s: float) -> _Spec:
    if not key:
        raise ConfigError("key_field", "expected the field rows are grouped by")
    size_ms = round(size_s * 1000)
    period_ms = size_ms if period_s is None else round(period_s * 1000)
    if size_ms <= 0:
        raise ConfigError("size_s", f"must be positive, got {size_s}")
    if period_ms <= 0 or period_ms > size_ms or size_ms % period_ms:
        raise ConfigError(
            "period_s", f"must be positive and divide size_s={size_s:g}, got {period_s}"
        )
    if lateness_s < 0:
        raise ConfigError("allowed_lateness_s", f"must be zero or more, got {lateness_s}")
    return _Spec(key, size_ms, period_ms, round(lateness_s * 1000), None)
