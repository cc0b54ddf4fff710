"""Failpoints: named places where a fault trial may kill this process on purpose.

``DATAPLANE_FAILPOINT=NAME@N`` makes the N-th pass through the place called NAME
kill the process with SIGKILL (no clean-up, as a crash or an OOM kill does), so a
trial can land a kill exactly where a clock could only hope to. Unset (always, in
production) a failpoint is one dictionary look-up.

Places: ``group_offsets`` (a sink's progress is in the table, its Kafka group
offsets are about to be committed).

>>> failpoint("group_offsets")  # not armed: nothing happens
"""

from __future__ import annotations

import os
import signal
import threading

__all__ = ["failpoint"]

_PASSES: dict[str, int] = {}
_LOCK = threading.Lock()


def failpoint(name: str) -> None:
    """Kills this process if ``DATAPLANE_FAILPOINT`` arms ``name`` for this pass."""
    armed = os.environ.get("DATAPLANE_FAILPOINT")
    if not armed:
        return
    wanted, _, nth = armed.partition("@")
    if wanted != name:
        return
    with _LOCK:
        _PASSES[name] = _PASSES.get(name, 0) + 1
        if _PASSES[name] >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
