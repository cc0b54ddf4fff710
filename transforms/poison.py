"""Poison records: a record whose processing raises on every attempt becomes a dead letter.

A runner retries a failed bundle (the direct runner not at all, Dataflow streaming
forever), so one record that always raises would stop a pipeline or stall it
for good. Stages call their per-record work through :func:`attempt`: transient
failures get a bounded number of retries with backoff, and a record that still
fails becomes a ``PoisonRecord`` dead letter naming the exception and the number
of attempts, while the pipeline goes on with the next record.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from apache_beam.metrics import Metrics

from transforms.deadletter import DeadLetter, row_dead_letter

__all__ = ["DEFAULT_ATTEMPTS", "Attempted", "attempt", "poison_dead_letter"]

DEFAULT_ATTEMPTS = 3
T = TypeVar("T")


class Attempted(NamedTuple, Generic[T]):
    """The outcome of :func:`attempt`: a value, or the last error after every try.

    (A NamedTuple: stages make one per record, and a tuple is the cheapest to make.)
    """

    value: T | None
    error: Exception | None
    attempts: int


def attempt(
    work: Callable[[], T],
    *,
    stage: str,
    attempts: int = DEFAULT_ATTEMPTS,
    backoff_s: float = 0.05,
) -> Attempted[T]:
    """Runs ``work`` up to ``attempts`` times (exponential backoff between tries).

    >>> calls = []
    >>> def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 2:
    ...         raise TimeoutError("slow")
    ...     return "ok"
    >>> attempt(flaky, stage="demo", backoff_s=0).value
    'ok'
    >>> outcome = attempt(lambda: 1 / 0, stage="demo", backoff_s=0)
    >>> type(outcome.error).__name__, outcome.attempts
    ('ZeroDivisionError', 3)
    """
    error: Exception | None = None
    for tried in range(1, attempts + 1):
        try:
            return Attempted(work(), None, tried)
        except Exception as err:  # any failure of user-level work is retried, then dead-lettered
            error = err
            Metrics.counter("dataplane.poison", f"{stage}.failed_attempts").inc()
            if tried < attempts:
                time.sleep(backoff_s * 2 ** (tried - 1))
    Metrics.counter("dataplane.poison", f"{stage}.dead_letters").inc()
    return Attempted(None, error, attempts)


def poison_dead_letter(row: dict[str, Any], *, stage: str, outcome: Attempted[Any]) -> DeadLetter:
    """The dead letter of a decoded row whose processing failed every attempt."""
    error = outcome.error
    detail = f"{type(error).__name__}: {error}"[:500]
    return row_dead_letter(
        row,
        stage=stage,
        error_type="PoisonRecord",
        message=f"failed {outcome.attempts} attempts; last: {detail}",
    )
