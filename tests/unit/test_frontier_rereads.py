"""The frontier after commits that re-read records already behind it (restarts, zombies).

A restarted reader resumes at the frontier, but a second writer, or a batch cut across
a restart, can commit a run that starts before the frontier and ends beyond it. Such a
run must move the frontier; before, only runs starting exactly at it did, and a Kinesis
fault trial's frontier stayed thousands of records behind the tables, so every restart
read them all again.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from transforms.checkpoint.frontier import CHAIN_START, PartitionCheckpoint, advance, segments


@st.composite
def chains_and_commits(draw: st.DrawFn) -> tuple[list[int], list[tuple[int, int]]]:
    gaps = draw(st.lists(st.integers(1, 5), min_size=1, max_size=60))
    chain = [sum(gaps[: n + 1]) for n in range(len(gaps))]
    slices = draw(
        st.lists(
            st.tuples(st.integers(0, len(chain) - 1), st.integers(1, len(chain))).map(
                lambda ab: (min(ab), max(ab[0] + 1, ab[1]))
            ),
            max_size=25,
        )
    )
    return chain, slices


def _links(chain: list[int], start: int, stop: int) -> list[tuple[str, str]]:
    return [
        (str(chain[i]), CHAIN_START if i == 0 else str(chain[i - 1])) for i in range(start, stop)
    ]


def _true_frontier(chain: list[int], committed: set[int]) -> str | None:
    reached = None
    for position in chain:
        if position not in committed:
            break
        reached = str(position)
    return reached


@given(chains_and_commits())
def test_the_frontier_is_the_committed_prefix_whatever_the_slices(data) -> None:
    chain, slices = data
    progress = PartitionCheckpoint()
    committed: set[int] = set()
    for start, stop in slices:
        progress = progress.merged(segments(_links(chain, start, stop)))
        committed |= set(chain[start:stop])
        assert progress.frontier == _true_frontier(chain, committed)
        # What is kept beyond the frontier is only what lies after it.
        assert all(int(last) > int(progress.frontier or 0) for last in progress.ahead.values())


@given(chains_and_commits(), st.integers(0, 1))
def test_two_sibling_tables_together_reach_the_committed_prefix(data, side) -> None:
    chain, slices = data
    tables = [PartitionCheckpoint(), PartitionCheckpoint()]
    committed: set[int] = set()
    for n, (start, stop) in enumerate(slices):
        own = (n + side) % 2
        tables[own] = tables[own].merged(segments(_links(chain, start, stop)), tables[1 - own])
        committed |= set(chain[start:stop])
    combined = tables[0].merged({}, tables[1])
    assert combined.frontier == _true_frontier(chain, committed)


def test_a_run_from_before_the_frontier_moves_it() -> None:
    assert advance("6", {"2": "8", "8": "9"}) == "9"
    assert advance("6", {"2": "5"}) == "6"  # ends before it: nothing to add
    assert advance(None, {CHAIN_START: "4", "3": "7"}) == "7"
