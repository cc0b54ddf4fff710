"""Which source positions are fully committed: chains of ``prev_position`` links.

Every record from an ordered source (Kafka partition, Kinesis shard) names the
record read before it from the same partition (``Record.prev_position``), or
``"start"`` when it is the first one after a configured start position. Those
links make a chain per partition whatever the offsets look like: compacted
topics and transaction markers leave gaps in Kafka offsets, and Kinesis sequence
numbers are sparse 56-digit numbers, so "offset + 1" means nothing.

A committer keeps, per partition, a **frontier** (every record of the partition
up to it is committed, in this table or in a sibling table of the same pipeline,
such as the dead-letter table) and the **segments ahead** of it: runs of the chain
it committed beyond a record still in flight (records reach sinks out of order).
Each commit stores that state in its commit info; the frontier moves as far as
the chain is unbroken across the pipeline's tables. On restart the source resumes
each partition just after its frontier: nothing before it is missing, and rows
after it that are already in a table are dropped by the record-id check.

Positions are decimal text compared as integers (Kinesis numbers exceed 64 bits).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CHAIN_START",
    "Checkpoint",
    "PartitionCheckpoint",
    "PartitionKey",
    "advance",
    "segments",
]

CHAIN_START = "start"
PartitionKey = tuple[str, str, str]  # (source, stream, partition)
_FORMAT = 1


def _after(a: str, b: str) -> bool:
    """Whether position ``a`` comes after ``b`` (``"start"`` comes before everything).

    >>> _after("10", "9"), _after("5", "start"), _after("start", "5"), _after("start", "start")
    (True, True, False, False)
    """
    if b == CHAIN_START:
        return a != CHAIN_START
    return a != CHAIN_START and int(a) > int(b)


def segments(links: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``(position, prev_position)`` links → the chain's runs as ``{prev of first: last}``.

    >>> segments([("5", "start"), ("7", "5"), ("9", "8"), ("12", "9")])
    {'8': '12', 'start': '7'}
    """
    following: dict[str, str] = {}
    for position, prev in links:
        known = following.get(prev)
        if known is None or _after(position, known):
            following[prev] = position
    firsts = set(following) - set(following.values())
    runs = {}
    for first in firsts:
        last = following[first]
        while last in following:
            last = following[last]
        runs[first] = last
    return dict(sorted(runs.items()))


def advance(frontier: str | None, runs: Mapping[str, str]) -> str | None:
    """Walks the chain from ``frontier`` (None: from the start) through ``runs``.

    A run that begins at or before the frontier and ends after it moves the frontier
    too: a batch that re-commits records already behind the frontier (a restarted or
    second writer reading them again) brings a run that starts before it.

    >>> advance("4", {"4": "7", "7": "9", "10": "12"})
    '9'
    >>> advance(None, {"3": "5"}) is None  # the first record is not committed yet
    True
    >>> advance("6", {"2": "8", "8": "9"})  # a run from before the frontier, past it
    '9'
    """
    at = CHAIN_START if frontier is None else frontier
    for first, last in sorted(runs.items(), key=lambda run: _order(run[0])):
        if _after(first, at):
            break  # runs are in order: none after this one can join on
        if _after(last, at):
            at = last
    return None if at == CHAIN_START else at


def _order(position: str) -> int:
    return -1 if position == CHAIN_START else int(position)


@dataclass
class PartitionCheckpoint:
    """One partition's committed frontier and the runs committed beyond it."""

    frontier: str | None = None
    ahead: dict[str, str] = field(default_factory=dict)

    def merged(self, runs: Mapping[str, str], *others: PartitionCheckpoint) -> PartitionCheckpoint:
        """This partition after committing ``runs``, given the siblings' checkpoint ``others``."""
        frontiers = [p.frontier for p in (self, *others) if p.frontier is not None]
        start = max(frontiers, key=int) if frontiers else None
        own = _union(self.ahead, runs)
        reachable = _union(own, *(o.ahead for o in others))
        reached = advance(start, reachable)
        return PartitionCheckpoint(reached, _beyond(own, reached))


def _union(*maps: Mapping[str, str]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for runs in maps:
        for first, last in runs.items():
            if first not in joined or _after(last, joined[first]):
                joined[first] = last
    return joined


def _beyond(runs: Mapping[str, str], frontier: str | None) -> dict[str, str]:
    """The runs that still matter once ``frontier`` is reached."""
    if frontier is None:
        return dict(runs)
    return {
        first: last
        for first, last in runs.items()
        if first != CHAIN_START and _after(last, frontier)
    }


@dataclass
class Checkpoint:
    """Every partition's checkpoint as one table's commits record it."""

    partitions: dict[PartitionKey, PartitionCheckpoint] = field(default_factory=dict)

    def frontier(self, key: PartitionKey) -> str | None:
        found = self.partitions.get(key)
        return found.frontier if found is not None else None

    def after_commit(
        self, batch: Mapping[PartitionKey, Mapping[str, str]], siblings: Iterable[Checkpoint]
    ) -> Checkpoint:
        """The checkpoint to record with a commit of ``batch`` (runs per partition)."""
        siblings = list(siblings)
        keys = set(self.partitions) | set(batch)
        for sibling in siblings:
            keys |= set(sibling.partitions)
        updated = {}
        for key in sorted(keys):
            own = self.partitions.get(key, PartitionCheckpoint())
            others = [s.partitions[key] for s in siblings if key in s.partitions]
            updated[key] = own.merged(batch.get(key, {}), *others)
        return Checkpoint(updated)

    @classmethod
    def combined(cls, tables: Iterable[Checkpoint]) -> Checkpoint:
        """What all of a pipeline's tables together prove committed (for resuming)."""
        tables = list(tables)
        if not tables:
            return cls()
        first, rest = tables[0], tables[1:]
        return first.after_commit({}, rest)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": _FORMAT,
                "partitions": [
                    {
                        "source": source,
                        "stream": stream,
                        "partition": partition,
                        "frontier": p.frontier,
                        "ahead": [[a, b] for a, b in p.ahead.items()],
                    }
                    for (source, stream, partition), p in sorted(self.partitions.items())
                ],
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | None) -> Checkpoint:
        if not text:
            return cls()
        data: dict[str, Any] = json.loads(text)
        return cls(
            {
                (p["source"], p["stream"], p["partition"]): PartitionCheckpoint(
                    p["frontier"], {a: b for a, b in p["ahead"]}
                )
                for p in data.get("partitions", [])
            }
        )
