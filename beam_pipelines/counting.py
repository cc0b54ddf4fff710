"""Pipeline-level counters: the records in = valid + dead letters bookkeeping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from transforms.deadletter import DeadLetter

__all__ = ["CountDeadLetters", "CountValid"]


class CountDeadLetters(beam.DoFn):
    """Counts dead letters in all (``dataplane.pipeline/dead_letters``) and by reason."""

    def process(self, letter: DeadLetter) -> Iterator[DeadLetter]:
        Metrics.counter("dataplane.dead_letters", letter.error_type).inc()
        Metrics.counter("dataplane.pipeline", "dead_letters").inc()
        yield letter


class CountValid(beam.DoFn):
    """Counts rows that passed every check (``dataplane.pipeline/valid``)."""

    def process(self, row: dict[str, Any]) -> Iterator[dict[str, Any]]:
        Metrics.counter("dataplane.pipeline", "valid").inc()
        yield row
