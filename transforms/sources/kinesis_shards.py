"""Kinesis shard planning and the restriction a reader works through.

A restriction is a set of shards with their lineage and per-shard progress (the
last sequence number handed on). Sequence numbers are decimal strings of up to
56 digits: they are compared as integers, never as text.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from apache_beam.io.iobase import RestrictionTracker

__all__ = [
    "ITERATOR_TYPES",
    "ShardRestriction",
    "ShardSetTracker",
    "ShardState",
    "components",
    "ready_shards",
    "split_limit",
]

ITERATOR_TYPES = ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "AFTER_SEQUENCE_NUMBER")


@dataclass
class ShardState:
    """One shard's place in a read.

    Attributes:
        shard_id: the shard.
        parents: its parent and adjacent parent, when they are part of the read.
        start_type: the iterator type to start with when nothing was read yet.
        start_value: the sequence number (AFTER_SEQUENCE_NUMBER) or epoch ms
            (AT_TIMESTAMP) that goes with ``start_type``.
        last_sequence: the last sequence number handed on; reads resume after it.
        done: the shard is finished (its end was reached, or a bounded read's end).
    """

    shard_id: str
    parents: tuple[str, ...] = ()
    start_type: str = "TRIM_HORIZON"
    start_value: str | None = None
    last_sequence: str | None = None
    done: bool = False


@dataclass
class ShardRestriction:
    """The shards one reader call works through, and when a bounded read stops.

    Attributes:
        shards: shard id -> state, parents before children.
        bounded: stop at each shard's end as of the start (or at ``max_records``).
        stop_arrival_ms: bounded reads skip records that arrived after this time.
        max_records: a bounded read's record budget for this restriction (0: none).
        emitted: records handed on so far under this restriction.
    """

    shards: dict[str, ShardState] = field(default_factory=dict)
    bounded: bool = False
    stop_arrival_ms: int | None = None
    max_records: int = 0
    emitted: int = 0

    def finished(self) -> bool:
        """Whether nothing is left to read."""
        if self.bounded and self.max_records and self.emitted >= self.max_records:
            return True
        return all(state.done for state in self.shards.values())


def ready_shards(restriction: ShardRestriction) -> list[ShardState]:
    """Unfinished shards whose parents in the read are finished (parents read first).

    >>> r = ShardRestriction({"a": ShardState("a"), "b": ShardState("b", parents=("a",))})
    >>> [s.shard_id for s in ready_shards(r)]
    ['a']
    """
    shards = restriction.shards
    return [
        state
        for state in shards.values()
        if not state.done and all(shards[p].done for p in state.parents if p in shards)
    ]


def components(shards: Iterable[ShardState]) -> list[list[ShardState]]:
    """Groups shards that are related through splits and merges (each group keeps its order).

    >>> groups = components([ShardState("a"), ShardState("b"), ShardState("c", ("a",))])
    >>> [[s.shard_id for s in g] for g in groups]
    [['a', 'c'], ['b']]
    """
    shards = list(shards)
    root = {s.shard_id: s.shard_id for s in shards}

    def find(shard_id: str) -> str:
        while root[shard_id] != shard_id:
            root[shard_id] = root[root[shard_id]]
            shard_id = root[shard_id]
        return shard_id

    for state in shards:
        for parent in state.parents:
            if parent in root:
                root[find(state.shard_id)] = find(parent)
    groups: dict[str, list[ShardState]] = {}
    for state in shards:
        groups.setdefault(find(state.shard_id), []).append(state)
    return list(groups.values())


def split_limit(total: int, parts: int) -> Iterator[int]:
    """``total`` divided over ``parts`` as evenly as integers allow (0 stays 0: no limit).

    >>> list(split_limit(10, 3)), list(split_limit(0, 2))
    ([4, 3, 3], [0, 0])
    """
    for index in range(parts):
        yield 0 if total == 0 else total // parts + (1 if index < total % parts else 0)


class ShardSetTracker(RestrictionTracker):
    """Tracks progress through a :class:`ShardRestriction`.

    Claims are tuples: ``("record", shard_id, sequence)`` hands one record on,
    ``("end", shard_id, children)`` finishes a shard and adds the children
    (``{child_id: parents}``) a streaming read must go on with. A checkpoint
    (``try_split(0)``) leaves an empty primary and the whole rest as residual.
    """

    def __init__(self, restriction: ShardRestriction) -> None:
        self._restriction = copy.deepcopy(restriction)
        self._stopped = False

    def current_restriction(self) -> ShardRestriction:
        return self._restriction

    def try_claim(self, position: tuple[str, str, Any]) -> bool:
        if self._stopped:
            return False
        kind, shard_id, value = position
        state = self._restriction.shards.get(shard_id)
        if state is None or state.done:
            return False
        if kind == "record":
            if self._restriction.finished():
                return False
            state.last_sequence = value
            self._restriction.emitted += 1
        elif kind == "end":
            state.done = True
            self._add_children(value)
        else:
            raise ValueError(f"unknown claim {kind!r}")
        return True

    def _add_children(self, children: Mapping[str, tuple[str, ...]]) -> None:
        for child_id, parents in children.items():
            if child_id not in self._restriction.shards:
                self._restriction.shards[child_id] = ShardState(child_id, parents=tuple(parents))

    def try_split(self, fraction_of_remainder: float) -> Any:
        if self._stopped or fraction_of_remainder != 0 or self._restriction.finished():
            return None
        residual = copy.deepcopy(self._restriction)
        primary = ShardRestriction(bounded=self._restriction.bounded)
        self._restriction, self._stopped = primary, True
        return primary, residual

    def check_done(self) -> None:
        if not self._stopped and not self._restriction.finished():
            left = [s.shard_id for s in self._restriction.shards.values() if not s.done]
            raise ValueError(f"shards {left} were not finished")

    def is_bounded(self) -> bool:
        return self._restriction.bounded
