"""BatchByKey: the batching step of every sink (row, byte and latency bounds, per key).

A sink's bounds are a :class:`BatchPolicy`. Beam's ``GroupIntoBatches`` would do
the batching, but Beam's in-process FnApiRunner (2.77) keeps the timers of every
stateful step in buffers named by timer family alone, shared across steps: two
``GroupIntoBatches`` in one pipeline then read each other's timers (a decoding
error when their key coders differ, bundles left pending otherwise). This step
names its timer families after a name the sink gives it (its table or directory),
so they differ between the sinks of a pipeline and stay the same from one
submission of the pipeline to the next (a runner that compares the graphs of a
running job and its update sees the same steps); keys are text so that key coders
agree everywhere.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
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

from schemas.errors import ConfigError
from transforms.batches import Batch, is_batched, items_of

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "TEXT_KEYED",
    "BatchByKey",
    "BatchPerTable",
    "BatchPolicy",
    "batch_wait_s",
    "row_bytes",
]

TEXT_KEYED = beam.typehints.KV[str, Any]
_BATCH_KEYED = beam.typehints.KV[str, Batch]
# The bytes of rows (see row_bytes) a batch may hold before it is cut.
DEFAULT_BATCH_BYTES = 32 << 20
_OTHER_BYTES = 8


@dataclass(frozen=True)
class BatchPolicy:
    """How a sink batches rows: at most ``size`` rows and ``max_bytes`` (see
    :func:`row_bytes`) per batch, and in streaming a row waits at most about
    ``max_latency_s`` for its batch (see :func:`batch_wait_s`).

    The sinks take these as ``batch_size`` and ``max_batch_latency_s``; an error
    names the parameter.

    >>> BatchPolicy(500, 2.0).size
    500
    >>> BatchPolicy(0, 2.0)
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: batch_size: must be positive, got 0
    """

    size: int
    max_latency_s: float
    max_bytes: int = DEFAULT_BATCH_BYTES

    def __post_init__(self) -> None:
        for name, value in (
            ("batch_size", self.size),
            ("max_batch_latency_s", self.max_latency_s),
            ("max_batch_bytes", self.max_bytes),
        ):
            if value <= 0:
                raise ConfigError(name, f"must be positive, got {value}")

    def display_data(self) -> dict[str, Any]:
        """The policy as a sink shows it in its display data."""
        return {"batch_size": self.size, "max_batch_latency_s": self.max_latency_s}


def row_bytes(row: Any) -> int:
    """An estimate of what a row holds: its text and bytes, and 8 per other value.

    Lists (one level down) count their items the same way. It is what a batch's
    byte bound measures, so a few large rows cut a batch as many small ones do.

    >>> row_bytes({"text": "hello", "_value": b"0123456789", "n": 3, "tags": ["ab", "c"]})
    26
    """
    if not isinstance(row, dict):
        return 64
    total = 0
    for value in row.values():
        if isinstance(value, (str, bytes)):
            total += len(value)
        elif isinstance(value, list):
            for item in value:
                total += len(item) if isinstance(item, (str, bytes)) else _OTHER_BYTES
        else:
            total += _OTHER_BYTES
    return total


def _cut(rows: list, size: int, max_bytes: int) -> tuple[list[list], list]:
    """``rows`` cut into full batches (``size`` rows, or ``max_bytes`` reached) and the rest.

    A row larger than ``max_bytes`` is a batch of its own.

    >>> _cut([{"t": "x" * 4}] * 5, 2, 100)
    ([[{'t': 'xxxx'}, {'t': 'xxxx'}], [{'t': 'xxxx'}, {'t': 'xxxx'}]], [{'t': 'xxxx'}])
    >>> full, rest = _cut([{"t": "x" * 4}] * 5, 10, 8)
    >>> [len(b) for b in full], len(rest)
    ([2, 2], 1)
    """
    full: list[list] = []
    batch: list = []
    weight = 0
    for row in rows:
        batch.append(row)
        weight += row_bytes(row)
        if len(batch) >= size or weight >= max_bytes:
            full.append(batch)
            batch, weight = [], 0
    return full, batch


def batch_wait_s(max_latency_s: float) -> float:
    """How long a streaming batch waits for rows: the bound less a share for the rest.

    A row's latency bound runs from its arrival at the pipeline to its commit; the
    batcher leaves a quarter of it (at most 1.5 s) to the steps before it and the commit.

    >>> batch_wait_s(5.0), batch_wait_s(2.0), batch_wait_s(60.0)
    (3.75, 1.5, 58.5)
    """
    return max_latency_s - min(max_latency_s / 4, 1.5)


class _PackBundle(beam.DoFn):
    """``(key, [rows])`` packs per key and window of each bundle, cut at the bounds.

    A pack is handed on once it holds ``size`` rows or ``max_bytes`` (see
    :func:`row_bytes`), and what is left at the end of the bundle then: a bundle of
    any length holds at most one pack per key and window. In streaming, the
    stateful batcher after it then touches its state once per pack rather than
    once per row (on the direct runners, whose state calls are Python, that was
    what a sink's batcher spent its time on). Where batches need not be the same
    on a rerun (the Delta sinks: their commits are idempotent by record id), a
    batch run uses the packs as its batches, so it holds at most a batch per
    key instead of all its rows (a GroupByKey on the in-process runner holds
    everything it groups).
    """

    def __init__(self, size: int, max_bytes: int) -> None:
        self._size, self._max_bytes = size, max_bytes

    def start_bundle(self) -> None:
        self._packs: dict[tuple[str, Any], tuple[Timestamp, Batch, int]] = {}

    def process(
        self,
        element: tuple[str, Any],
        window: Any = beam.DoFn.WindowParam,
        timestamp: Any = beam.DoFn.TimestampParam,
    ) -> Iterator[WindowedValue]:
        key, rows_or_batch = element
        oldest, rows, weight = self._packs.get((key, window), (timestamp, Batch(), 0))
        oldest = min(oldest, timestamp)
        for row in items_of(rows_or_batch):
            rows.append(row)
            weight += row_bytes(row)
            if len(rows) >= self._size or weight >= self._max_bytes:
                yield WindowedValue((key, rows), oldest, (window,))
                oldest, rows, weight = timestamp, Batch(), 0
        if rows:
            self._packs[(key, window)] = (oldest, rows, weight)
        else:
            self._packs.pop((key, window), None)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for (key, window), (oldest, rows, _weight) in self._packs.items():
            yield WindowedValue((key, rows), oldest, (window,))
        self._packs = {}


def _batch_dofn(size: int, max_bytes: int, latency_s: float, timer_suffix: str) -> beam.DoFn:
    """A batching DoFn (for streaming) whose timer families end in ``timer_suffix``.

    Its input is ``(key, [rows])`` packs (see :class:`_PackBundle`); its state holds
    packs, with the rows and bytes waiting.
    """
    wait_s = batch_wait_s(latency_s)
    flush_spec = TimerSpec(f"flush-{timer_suffix}", TimeDomain.REAL_TIME)
    end_spec = TimerSpec(f"end-{timer_suffix}", TimeDomain.WATERMARK)

    class _BatchDoFn(beam.DoFn):
        PACKS = BagStateSpec("packs", PickleCoder())
        COUNT = ReadModifyWriteStateSpec("count", VarIntCoder())
        BYTES = ReadModifyWriteStateSpec("bytes", VarIntCoder())
        ARMED = ReadModifyWriteStateSpec("armed", VarIntCoder())

        def process(
            self,
            element: tuple[str, list],
            window: Any = beam.DoFn.WindowParam,
            packs: Any = beam.DoFn.StateParam(PACKS),
            count: Any = beam.DoFn.StateParam(COUNT),
            weight: Any = beam.DoFn.StateParam(BYTES),
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
            waiting_bytes = (weight.read() or 0) + sum(row_bytes(row) for row in rows)
            if waiting < size and waiting_bytes < max_bytes:
                count.write(waiting)
                weight.write(waiting_bytes)
                return
            full, rest = _cut([row for pack in packs.read() for row in pack], size, max_bytes)
            packs.clear()
            for batch in full:
                yield key, batch
            if rest:  # the rest waits for more rows, or for its timer
                packs.add(rest)
                count.write(len(rest))
                weight.write(sum(row_bytes(row) for row in rest))
            else:
                count.clear()
                weight.clear()
                armed.clear()
                flush.clear()

        def on_flush_or_end(
            self,
            key: Any = beam.DoFn.KeyParam,
            packs: Any = beam.DoFn.StateParam(PACKS),
            count: Any = beam.DoFn.StateParam(COUNT),
            weight: Any = beam.DoFn.StateParam(BYTES),
            armed: Any = beam.DoFn.StateParam(ARMED),
            flush: Any = beam.DoFn.TimerParam(flush_spec),
        ) -> Iterator[tuple[str, list]]:
            yield from _drain(key, size, max_bytes, packs, (count, weight, armed, flush))

        # Either timer hands on everything waiting: the wait is over, or the window ended.
        on_timer(flush_spec)(on_flush_or_end)
        on_timer(end_spec)(on_flush_or_end)

    return _BatchDoFn()


def _drain(
    key: str, size: int, max_bytes: int, packs: Any, cleared: tuple[Any, ...]
) -> Iterator[tuple[str, list]]:
    full, rest = _cut([row for pack in packs.read() for row in pack], size, max_bytes)
    packs.clear()
    for state in cleared:
        state.clear()
    for batch in [*full, rest] if rest else full:
        yield key, batch


class BatchByKey(beam.PTransform):
    """Groups ``(text key, row)`` pairs into ``(key, [rows])`` batches, as ``policy`` says.

    A batch holds at most ``policy.size`` rows and is cut once it holds ``max_bytes``
    (see :func:`row_bytes`; a larger row is a batch of its own). In streaming,
    each bundle's rows are packed per key first (state is then touched once per
    pack), and a batch is emitted when it is full, when its first row has waited
    :func:`batch_wait_s` of ``max_latency_s`` (processing time), or when the
    window ends. In a batch run, ``same_on_rerun`` batches (the default) group
    each key once and cut the group, so the same input forms the same batches;
    without it each bundle's packs are the batches, and the run holds a batch per
    key at a time rather than all it groups (the in-process runner keeps a
    GroupByKey's input in memory). ``name`` names its timers: give each batching
    step of a pipeline its own (a sink uses its table's URI).

    Example:
        >>> import apache_beam as beam
        >>> with beam.Pipeline() as p:
        ...     _ = (p | beam.Create([("t", n) for n in range(5)])
        ...            | BatchByKey(BatchPolicy(2, 5.0), name="t")
        ...            | beam.Map(lambda kv: len(kv[1])) | beam.combiners.ToList()
        ...            | beam.Map(lambda sizes: print(sorted(sizes))))
        [1, 2, 2]
    """

    def __init__(self, policy: BatchPolicy, *, name: str, same_on_rerun: bool = True) -> None:
        super().__init__()
        self._policy, self._same_on_rerun = policy, same_on_rerun
        self._suffix = f"{zlib.crc32(name.encode('utf-8')):08x}"

    def expand(self, keyed: beam.PCollection) -> beam.PCollection:
        size, max_bytes = self._policy.size, self._policy.max_bytes
        streaming = keyed.pipeline.options.view_as(StandardOptions).streaming
        if not streaming and self._same_on_rerun:
            return (
                keyed
                | "Group" >> beam.GroupByKey().with_input_types(TEXT_KEYED)
                | "Cut" >> beam.FlatMap(lambda group: _cut_group(group, size, max_bytes))
            )
        packs = keyed | "Pack" >> beam.ParDo(_PackBundle(size, max_bytes)).with_input_types(
            TEXT_KEYED
        ).with_output_types(_BATCH_KEYED)
        if not streaming:
            return packs
        dofn = _batch_dofn(size, max_bytes, self._policy.max_latency_s, self._suffix)
        return packs | "Batch" >> beam.ParDo(dofn).with_input_types(TEXT_KEYED)


def _cut_group(group: tuple[str, Any], size: int, max_bytes: int) -> Iterator[tuple[str, list]]:
    key, elements = group
    full, rest = _cut([row for element in elements for row in items_of(element)], size, max_bytes)
    for batch in [*full, rest] if rest else full:
        yield key, batch


class BatchPerTable(beam.PTransform):
    """Batches rows under one key, the table URI: one committer per table.

    ``role`` tells apart two steps that batch for the same table (an append and a
    merge): their timers are named after the URI and the role.

    Its batches need not be the same on a rerun (a table's commits are idempotent
    by record id), so a batch run holds one batch per table at a time.

    Example:
        >>> import apache_beam as beam
        >>> with beam.Pipeline() as p:
        ...     _ = (p | beam.Create(range(3)) | BatchPerTable("/lake/t", BatchPolicy(10, 5.0))
        ...            | beam.Map(lambda kv: print(kv[0], sorted(kv[1]))))
        /lake/t [0, 1, 2]
    """

    def __init__(self, table_uri: str, policy: BatchPolicy, *, role: str = "append") -> None:
        super().__init__()
        self._table_uri, self._policy, self._role = table_uri, policy, role

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        uri = self._table_uri
        return (
            rows
            | "KeyByTable"
            >> beam.Map(lambda row: (uri, row)).with_output_types(
                _BATCH_KEYED if is_batched(rows) else TEXT_KEYED
            )
            | "Group" >> BatchByKey(self._policy, name=f"{self._role} {uri}", same_on_rerun=False)
        )
