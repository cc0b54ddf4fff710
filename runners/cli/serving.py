"""Serving until Ctrl-C or SIGTERM, for ``schemas serve``, ``broker`` and ``job-service``."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

__all__ = ["raise_interrupt", "until_interrupted"]


def until_interrupted(serve: Callable[[], Any], stop: Callable[[], Any]) -> None:
    """Runs ``serve`` until Ctrl-C or SIGTERM, then ``stop`` (which a second Ctrl-C cannot cut).

    Both handlers are installed here: a process started in the background by a shell
    without job control inherits SIGINT ignored, and Ctrl-C must still stop it.
    """
    signal.signal(signal.SIGINT, raise_interrupt)
    signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        serve()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop()


def raise_interrupt(*_: Any) -> None:
    """A signal handler that turns the signal (SIGTERM, say) into a KeyboardInterrupt."""
    raise KeyboardInterrupt
