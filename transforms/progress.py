"""In-process progress for live displays on local runners.

Beam metrics are final only when a run ends; a progress display on an in-process
runner (or the LOOPBACK workers of a portable one) reads these instead: counts
that only grow (records read, rows committed per table) and the latest value of
gauges (lag per partition or shard, source watermarks). On remote runners they
stay empty in the launching process, and displays say so.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["LOCAL_GAUGES", "LOCAL_PROGRESS", "note", "set_gauge"]

LOCAL_PROGRESS: Counter[str] = Counter()
LOCAL_GAUGES: dict[str, int] = {}


def note(name: str, amount: int = 1) -> None:
    """Adds ``amount`` to the local progress count ``name``."""
    LOCAL_PROGRESS[name] += amount


def set_gauge(name: str, value: int) -> None:
    """Sets the local gauge ``name`` (e.g. ``lag kafka tweets[0]``) to ``value``."""
    LOCAL_GAUGES[name] = value
