"""What every producer shares: pacing its messages and saying where each one landed."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from beam_pipelines.feeds.tweets import GeneratedMessage

__all__ = ["OnLanded", "paced"]

OnLanded = Callable[[str, str, GeneratedMessage], None]
"""Called once a message is stored, with its (partition or shard, offset or sequence number)."""

T = TypeVar("T")


def paced(
    messages: Iterable[T], *, rate_per_s: float | None = None, most: int = 500
) -> Iterator[list[T]]:
    """Batches of ``messages``, at most ``most`` each; with ``rate_per_s``, a tenth of a
    second's worth each, every batch followed by the pause that keeps the rate.

    Example:
        >>> list(paced(range(5), most=2))
        [[0, 1], [2, 3], [4]]
        >>> list(paced(range(5), rate_per_s=20.0))  # two a batch, 0.1 s apart
        [[0, 1], [2, 3], [4]]
    """
    size = min(most, max(1, int(rate_per_s / 10))) if rate_per_s else most
    remaining = iter(messages)
    while batch := list(itertools.islice(remaining, size)):
        yield batch
        if rate_per_s:
            time.sleep(len(batch) / rate_per_s)
