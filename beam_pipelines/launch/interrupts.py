"""Ctrl-C from the first moment of ``python -m beam_pipelines.<pipeline>``.

Python turns a SIGINT into ``KeyboardInterrupt`` wherever the main thread is; while
a pipeline starts, that is often inside a library's import, and some swallow it,
so a Ctrl-C in the first seconds could be lost and the run go on. The pipelines
instead take the first SIGINT or SIGTERM as a stop request from the start (the
run then exits 130 before it starts, or stops as a running one does) and a second
as an immediate exit. Only the pipeline programs arm this, never an import.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from transforms.stop import request_stop, stop_requested

__all__ = ["FORCED_EXIT", "stop_on_interrupts"]

FORCED_EXIT = 130  # the shell's status for a run ended by SIGINT


def stop_on_interrupts() -> None:
    """First SIGINT/SIGTERM: request a stop; second: exit ``FORCED_EXIT`` at once."""

    def handle(signum: int, frame: Any) -> None:
        if stop_requested():
            os._exit(FORCED_EXIT)
        request_stop()
        print(f"\n{signal.Signals(signum).name}: stopping (again to stop at once)", file=sys.stderr)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, handle)
