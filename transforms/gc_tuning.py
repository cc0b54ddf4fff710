"""Garbage-collector tuning for processes that run pipelines.

CPython's cyclic garbage collector scans every tracked object of the heap on its
full collections, and a process that runs a pipeline holds a large heap before
the first record: Beam, pyarrow, pandas and the rest of the imports, the
pipeline's graph and its DoFns (about a million objects). Records come and go by
reference counting; what triggers collections is the rate of allocation, so the
collector scans that heap over and over while records stream through: the
sentiment pipeline spent about a quarter of its time there (``python -m bench``).

:func:`freeze_heap_once` moves the objects alive at that moment to the
collector's permanent generation (``gc.freeze``), once per process: they are no
longer scanned, and everything allocated afterwards is collected as before.
"""

from __future__ import annotations

import gc
import threading

__all__ = ["freeze_heap_once"]

_LOCK = threading.Lock()
_FROZEN = False


def freeze_heap_once() -> bool:
    """Freezes the heap as it is now, the first time it is called in a process.

    The launcher calls it before a run; the decoding step calls it when its DoFn
    is set up, so that the worker processes of any runner get it too. Returns
    whether this call froze the heap.

    >>> first = freeze_heap_once()
    >>> freeze_heap_once()
    False
    """
    global _FROZEN
    with _LOCK:
        if _FROZEN:
            return False
        _FROZEN = True
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()
    return True
