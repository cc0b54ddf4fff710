"""The pipelines' bookkeeping: records in = valid + dead letters, counted once each."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.batches import Batch
from transforms.deadletter import DeadLetter

__all__ = ["AllDeadLetters", "CountDeadLetters", "CountValid"]


class CountDeadLetters(beam.DoFn):
    """Counts dead letters in all (``dataplane.pipeline/dead_letters``) and by reason."""

    def process(self, letter: DeadLetter) -> Iterator[DeadLetter]:
        Metrics.counter("dataplane.dead_letters", letter.error_type).inc()
        Metrics.counter("dataplane.pipeline", "dead_letters").inc()
        yield letter


class CountValid(beam.DoFn):
    """Counts rows (or batches' rows) that passed every check (``dataplane.pipeline/valid``)."""

    def __init__(self) -> None:
        self._valid = Metrics.counter("dataplane.pipeline", "valid")

    def process(self, rows: dict[str, Any] | Batch) -> Iterator[dict[str, Any] | Batch]:
        self._valid.inc(len(rows) if isinstance(rows, Batch) else 1)
        yield rows


class _NotValid(beam.DoFn):
    """A sink's misfits were counted valid before the sink: uncounts them."""

    def process(self, letter: DeadLetter) -> Iterator[DeadLetter]:
        Metrics.counter("dataplane.pipeline", "valid").dec()
        yield letter


class AllDeadLetters(beam.PTransform):
    """Flattens the stages' dead letters and the sinks' misfits into one PCollection.

    Rows a sink turned into dead letters (``WriteToDelta(...).with_dead_letters()``)
    passed every earlier check, so ``dataplane.pipeline/valid`` counted them; they
    are uncounted here, and records in = valid + dead letters still holds.

    Args:
        misfits: how many of the input PCollections, at the end, are sinks' misfits.

    Example:
        >>> from transforms.deadletter import dead_letter
        >>> from transforms.record import make_record
        >>> bad = dead_letter(make_record(source="file", stream="f", partition=0, position=0,
        ...                               value=b"x", event_time_ms=0),
        ...                   stage="decode", error_type="InvalidJson", message="x")
        >>> with beam.Pipeline() as p:
        ...     one, two = p | "One" >> beam.Create([bad]), p | "Two" >> beam.Create([bad])
        ...     _ = ((one, two) | AllDeadLetters(misfits=1) | beam.combiners.Count.Globally()
        ...          | beam.Map(print))
        2
    """

    def __init__(self, *, misfits: int = 1) -> None:
        super().__init__()
        self._misfits = misfits

    def expand(self, parts: tuple[beam.PCollection, ...]) -> beam.PCollection:
        cut = len(parts) - self._misfits
        stages, misfits = parts[:cut], parts[cut:]
        uncounted = tuple(
            part | f"NotValid{n}" >> beam.ParDo(_NotValid()) for n, part in enumerate(misfits)
        )
        return (*stages, *uncounted) | "Flatten" >> beam.Flatten()
