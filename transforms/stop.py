"""A stop request for the pipelines running in this process (Ctrl-C, SIGTERM).

Sources read it between polls: once a stop is requested they stop claiming
records and end their restrictions, so the watermark reaches the end, batching
sinks commit what they hold and the run finishes. Nothing read is lost or doubled
by a stop: a restart resumes after what the tables committed. Event-time windows
the sources' watermark had not passed when the stop was asked for are not emitted
(the next run recomputes them), see :class:`~transforms.featurize.WindowedAggregate`.

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

__all__ = ["clear_stop", "request_stop", "stop_requested", "watermark_at_stop_ms"]

_STOP = threading.Event()
_WATERMARK_AT_STOP: list[int | None] = [None]


def request_stop(watermark_ms: int | None = None) -> None:
    """Asks every source in this process to stop reading.

    ``watermark_ms``: the sources' watermark when the stop was asked for, if known;
    event-time work up to it is still done (see :func:`watermark_at_stop_ms`).
    """
    _WATERMARK_AT_STOP[0] = watermark_ms
    _STOP.set()


def watermark_at_stop_ms() -> int | None:
    """The sources' watermark (epoch ms) when the stop was asked for; None if unknown."""
    return _WATERMARK_AT_STOP[0] if _STOP.is_set() else None


def stop_requested() -> bool:
    """Whether a stop was requested since the last :func:`clear_stop`."""
    return _STOP.is_set()


def clear_stop() -> None:
    """Forgets a stop request (at the start and the end of a run)."""
    _STOP.clear()
    _WATERMARK_AT_STOP[0] = None
