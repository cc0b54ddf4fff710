"""A stop request for the pipelines running in this process (Ctrl-C, SIGTERM).

Sources read it between polls: once a stop is requested they stop claiming
records and end their restrictions, so the watermark reaches the end, batching
sinks commit what they hold and the run finishes. Nothing read is lost or doubled
by a stop: a restart resumes after what the tables committed. Event-time windows
that had not closed are not emitted on a stop (they are recomputed by the next
run), see :class:`~transforms.featurize.WindowedAggregate`.

It reaches the workers of local runners only (in-process and LOOPBACK); a job on
Flink or Dataflow is stopped through that runner.

>>> clear_stop(); stop_requested()
False
>>> request_stop(); stop_requested()
True
>>> clear_stop()
"""

from __future__ import annotations

import threading

__all__ = ["clear_stop", "request_stop", "stop_requested"]

_STOP = threading.Event()


def request_stop() -> None:
    """Asks every source in this process to stop reading."""
    _STOP.set()


def stop_requested() -> bool:
    """Whether a stop was requested since the last :func:`clear_stop`."""
    return _STOP.is_set()


def clear_stop() -> None:
    """Forgets a stop request (at the start of a run)."""
    _STOP.clear()
