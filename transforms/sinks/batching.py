"""BatchByKey: the batching step of every sink (size and latency bounds, per key).

Beam's ``GroupIntoBatches`` would do, but Beam's in-process FnApiRunner (2.77)
keeps the timers of every stateful step in buffers named by timer family alone,
shared across steps: two ``GroupIntoBatches`` in one pipeline then read each
other's timers (a decoding error when their key coders differ, bundles left
pending otherwise). This step gives its timers names unique to each use, and
keys are text so that key coders agree everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder, VarIntCoder
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.transforms.userstate import (
    BagStateSpec,
    ReadModifyWriteStateSpec,
    TimeDomain,
    TimerSpec,
    on_timer,
)
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

__all__ = ["TEXT_KEYED", "BatchByKey", "BatchPerTable", "batch_wait_s"]

TEXT_KEYED = beam.typehints.KV[str, Any]


def batch_wait_s(max_latency_s: float) -> float:
    """How long a streaming batch waits for rows: the bound less a share for the rest.

    A row's latency bound runs from its arrival at the pipeline to its commit; the
    batcher leaves a quarter of it (at most 1.5 s) to the steps before it and the commit.

    >>> batch_wait_s(5.0), batch_wait_s(2.0), batch_wait_s(60.0)
    (3.75, 1.5, 58.5)
    """
    return max_latency_s - min(max_latency_s / 4, 1.5)


class _PackBundle(beam.DoFn):
    """Streaming: one ``(key, [rows])`` per key and window of each bundle.

    The stateful batcher after it then touches its state once per bundle rather
    than once per row: on the direct runners, whose state calls are Python, that
    was what a sink's batcher spent its time on, and under load its queue grew.
    """

    def start_bundle(self) -> None:
        self._packs: dict[tuple[str, Any], tuple[Timestamp, list]] = {}

    def process(
        self,
        element: tuple[str, Any],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> None:
        key, row = element
        oldest, rows = self._packs.get((key, window), (timestamp, []))
        rows.append(row)
        self._packs[(key, window)] = (min(oldest, timestamp), rows)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for (key, window), (oldest, rows) in self._packs.items():
            yield WindowedValue((key, rows), oldest, (window,))
        self._packs = {}


def _batch_dofn(size: int, latency_s: float, timer_suffix: str) -> beam.DoFn:
    """A batching DoFn (for streaming) whose timer families are named after ``timer_suffix``.

    Its input is ``(key, [rows])`` packs (see :class:`_PackBundle`); its state holds packs.
    """
    wait_s = batch_wait_s(latency_s)
    flush_spec = TimerSpec(f"flush-{timer_suffix}", TimeDomain.REAL_TIME)
    end_spec = TimerSpec(f"end-{timer_suffix}", TimeDomain.WATERMARK)

    class _BatchDoFn(beam.DoFn):
        PACKS = BagStateSpec("packs", PickleCoder())
        COUNT = ReadModifyWriteStateSpec("count", VarIntCoder())
        ARMED = ReadModifyWriteStateSpec("armed", VarIntCoder())

        def process(
            self,
            element: tuple[str, list],
            window: Any = beam.DoFn.WindowParam,
            packs: Any = beam.DoFn.StateParam(PACKS),
            count: Any = beam.DoFn.StateParam(COUNT),
            armed: Any = beam.DoFn.StateParam(ARMED),
            flush: Any = beam.DoFn.TimerParam(flush_spec),
            end: Any = beam.DoFn.TimerParam(end_spec),
        ) -> Iterator[tuple[str, list]]:
            key, rows = element
            if not rows:
                return
            if not armed.read():
                end.set(window.max_timestamp())
                flush.set(Timestamp.now() + Duration(seconds=wait_s))
                armed.write(1)
            packs.add(rows)
            waiting = (count.read() or 0) + len(rows)
            count.write(waiting)
            if waiting < size:
                return
            batch = [row for pack in packs.read() for row in pack]
            packs.clear()
            count.clear()
            full = len(batch) - len(batch) % size
            for start in range(0, full, size):
                yield key, batch[start : start + size]
            if full < len(batch):  # the rest waits for more rows, or for its timer
                packs.add(batch[full:])
                count.write(len(batch) - full)
            else:
                armed.clear()
                flush.clear()

        @on_timer(flush_spec)
        def on_flush(
            self,
            key: Any = beam.DoFn.KeyParam,
            packs: Any = beam.DoFn.StateParam(PACKS),
            count: Any = beam.DoFn.StateParam(COUNT),
            armed: Any = beam.DoFn.StateParam(ARMED),
            flush: Any = beam.DoFn.TimerParam(flush_spec),
        ) -> Iterator[tuple[str, list]]:
            yield from _drain(key, size, packs, count, armed, flush)

        @on_timer(end_spec)
        def on_end(
            self,
            key: Any = beam.DoFn.KeyParam,
            packs: Any = beam.DoFn.StateParam(PACKS),
            count: Any = beam.DoFn.StateParam(COUNT),
            armed: Any = beam.DoFn.StateParam(ARMED),
            flush: Any = beam.DoFn.TimerParam(flush_spec),
        ) -> Iterator[tuple[str, list]]:
            yield from _drain(key, size, packs, count, armed, flush)

    return _BatchDoFn()


def _drain(
    key: str, size: int, packs: Any, count: Any, armed: Any, flush: Any
) -> Iterator[tuple[str, list]]:
    batch = [row for pack in packs.read() for row in pack]
    packs.clear()
    count.clear()
    armed.clear()
    flush.clear()
    yield from _chunks((key, batch), size)


class BatchByKey(beam.PTransform):
    """Groups ``(text key, row)`` pairs into ``(key, [rows])`` batches.

    In streaming, each bundle's rows are packed per key first (state is then
    touched once per bundle), and a batch is emitted when ``size`` rows are
    waiting, when its first row has waited :func:`batch_wait_s` of
    ``max_latency_s`` (processing time), or when the window ends. A
    batch pipeline groups each key once and cuts the group into ``size`` rows
    (the in-process runner does not wait for processing-time timers and fails on
    any left pending).

    Example:
        >>> import apache_beam as beam
        >>> with beam.Pipeline() as p:
        ...     _ = (p | beam.Create([("t", n) for n in range(5)]) | BatchByKey(2, 5.0)
        ...            | beam.Map(lambda kv: len(kv[1])) | beam.combiners.ToList()
        ...            | beam.Map(lambda sizes: print(sorted(sizes))))
        [1, 2, 2]
    """

    def __init__(self, size: int, max_latency_s: float) -> None:
        super().__init__()
        self._size, self._latency_s = size, max_latency_s
        self._suffix = uuid.uuid4().hex[:12]

    def expand(self, keyed: beam.PCollection) -> beam.PCollection:
        if not keyed.pipeline.options.view_as(StandardOptions).streaming:
            # A batch run groups once and cuts the groups: no per-row state calls.
            size = self._size
            return (
                keyed
                | "Group" >> beam.GroupByKey().with_input_types(TEXT_KEYED)
                | "Cut" >> beam.FlatMap(lambda group: _chunks(group, size))
            )
        dofn = _batch_dofn(self._size, self._latency_s, self._suffix)
        return (
            keyed
            | "Pack"
            >> beam.ParDo(_PackBundle()).with_input_types(TEXT_KEYED).with_output_types(TEXT_KEYED)
            | "Batch" >> beam.ParDo(dofn).with_input_types(TEXT_KEYED)
        )


def _chunks(group: tuple[str, Any], size: int) -> Iterator[tuple[str, list]]:
    key, rows = group
    batch: list = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield key, batch
            batch = []
    if batch:
        yield key, batch


class BatchPerTable(beam.PTransform):
    """Batches rows under one key, the table URI: one committer per table.

    Example:
        >>> import apache_beam as beam
        >>> with beam.Pipeline() as p:
        ...     _ = (p | beam.Create(range(3)) | BatchPerTable("/lake/t", 10, 5.0)
        ...            | beam.Map(lambda kv: print(kv[0], sorted(kv[1]))))
        /lake/t [0, 1, 2]
    """

    def __init__(self, table_uri: str, size: int, max_latency_s: float) -> None:
        super().__init__()
        self._table_uri, self._size, self._latency_s = table_uri, size, max_latency_s

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        uri = self._table_uri
        return (
            rows
            | "KeyByTable" >> beam.Map(lambda row: (uri, row)).with_output_types(TEXT_KEYED)
            | "Group" >> BatchByKey(self._size, self._latency_s)
        )
