"""Doing something every so often while a block runs (progress lines, lineage RUNNING events)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

__all__ = ["every"]


@contextlib.contextmanager
def every(period_s: float, action: Callable[[], None], *, name: str) -> Iterator[None]:
    """Calls ``action`` every ``period_s`` on a thread named ``name`` while the block runs.

    The thread is stopped and joined when the block ends (an action under way finishes).

    >>> calls = []
    >>> import time
    >>> with every(0.01, lambda: calls.append(1), name="tick"):
    ...     while not calls:
    ...         time.sleep(0.005)
    >>> [t.name for t in threading.enumerate() if t.name == "tick"]  # stopped and joined
    []
    """
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(period_s):
            action()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
