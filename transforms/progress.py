"""In-process progress counts for live displays on local runners.

Beam metrics are final only when a run ends; a progress display on an in-process
runner reads these counts instead. On remote runners they stay at zero in the
launching process, and displays say so.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["LOCAL_PROGRESS", "note"]

LOCAL_PROGRESS: Counter[str] = Counter()


def note(name: str, amount: int = 1) -> None:
    """Adds ``amount`` to the local progress count ``name``."""
    LOCAL_PROGRESS[name] += amount
