"""Committed frontiers: chains with offset gaps, out-of-order batches, sibling tables."""

import random

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms.checkpoint.frontier import (
    CHAIN_START,
    Checkpoint,
    PartitionCheckpoint,
    advance,
    segments,
)
from transforms.checkpoint.log import CheckpointLog, ResumeFrom, TableRef
from transforms.sinks.delta_commit import DeltaCommitter

KEY = ("kafka", "t", "0")


def _chain(positions):
    """(position, prev) links of records read in this order from one partition."""
    prevs = [CHAIN_START, *[str(p) for p in positions[:-1]]]
    return [(str(p), prev) for p, prev in zip(positions, prevs, strict=True)]


def _batch(links, *, value="x"):
    n = len(links)
    return pa.table(
        {
            "_record_id": [f"kafka-t-0-{p}" for p, _ in links],
            "_source": ["kafka"] * n,
            "_stream": ["t"] * n,
            "_partition": ["0"] * n,
            "_position": [p for p, _ in links],
            "_offset": [int(p) for p, _ in links],
            "_event_time": pa.array([0] * n, pa.timestamp("ms", tz="UTC")),
            "_prev_position": [prev for _, prev in links],
            "value": [value] * n,
        }
    )


def test_gaps_in_offsets_do_not_stop_the_frontier():
    # Offsets 3-4 and 8 do not exist (compaction, transaction markers): links skip them.
    links = _chain([0, 1, 2, 5, 6, 7, 9])
    progress = Checkpoint().after_commit({KEY: segments(links)}, [])
    assert progress.frontier(KEY) == "9"
    assert progress.partitions[KEY].ahead == {}


def test_a_record_in_flight_holds_the_frontier_until_it_lands():
    links = _chain([10, 11, 12, 13, 14])
    late, rest = [links[2]], links[:2] + links[3:]
    progress = Checkpoint().after_commit({KEY: segments(rest)}, [])
    assert progress.frontier(KEY) == "11"
    assert progress.partitions[KEY].ahead == {"12": "14"}
    progress = progress.after_commit({KEY: segments(late)}, [])
    assert progress.frontier(KEY) == "14" and progress.partitions[KEY].ahead == {}


def test_the_first_record_in_flight_means_no_frontier_at_all():
    links = _chain([0, 1, 2])
    progress = Checkpoint().after_commit({KEY: segments(links[1:])}, [])
    assert progress.frontier(KEY) is None  # resuming must start from the configured start


def test_sibling_tables_fill_each_others_holes():
    links = _chain(list(range(20)))
    dead = [links[i] for i in (3, 11)]  # the dead-letter table's records
    good = [link for link in links if link not in dead]
    main = Checkpoint().after_commit({KEY: segments(good)}, [])
    assert main.frontier(KEY) == "2"
    dlq = Checkpoint().after_commit({KEY: segments(dead)}, [main])
    assert dlq.frontier(KEY) == "19"
    assert Checkpoint.combined([main, dlq]).frontier(KEY) == "19"


@pytest.mark.parametrize("seed", range(20))
def test_any_commit_order_ends_at_the_last_record(seed):
    rng = random.Random(seed)
    positions = sorted(rng.sample(range(10_000), 300))  # sparse offsets, like Kinesis
    links = _chain(positions)
    rng.shuffle(links)
    tables = [Checkpoint(), Checkpoint()]
    committed = set()
    for start in range(0, len(links), 17):
        batch = links[start : start + 17]
        which = rng.randrange(2)
        tables[which] = tables[which].after_commit({KEY: segments(batch)}, [tables[1 - which]])
        committed |= {int(p) for p, _ in batch}
        frontier = Checkpoint.combined(tables).frontier(KEY)
        # Sound: everything up to the frontier is committed somewhere.
        if frontier is not None:
            assert all(p in committed for p in positions if p <= int(frontier))
    assert Checkpoint.combined(tables).frontier(KEY) == str(positions[-1])


def test_kinesis_sized_sequence_numbers_compare_as_integers():
    big = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
    positions = [big, big + 9, big + 100]
    progress = Checkpoint().after_commit(
        {("kinesis", "s", "shardId-0"): segments(_chain(positions))}, []
    )
    assert progress.frontier(("kinesis", "s", "shardId-0")) == str(big + 100)


def test_progress_round_trips_through_json():
    progress = Checkpoint(
        {KEY: PartitionCheckpoint("7", {"9": "12"}), ("kinesis", "s", "a"): PartitionCheckpoint()}
    )
    assert Checkpoint.from_json(progress.to_json()) == progress


def test_committer_records_progress_in_the_log_and_resume_reads_it(tmp_path):
    main, dlq = TableRef(str(tmp_path / "out"), "app"), TableRef(str(tmp_path / "dlq"), "app-dlq")
    links = _chain([0, 1, 2, 3, 4, 5])
    out = DeltaCommitter(main.uri, app_id=main.app_id, siblings=[dlq])
    dead = DeltaCommitter(dlq.uri, app_id=dlq.app_id, siblings=[main])
    out.commit(_batch([links[i] for i in (0, 1, 3, 5)]))
    assert CheckpointLog(main, None).latest().frontier(KEY) == "1"
    resume = ResumeFrom((main, dlq))
    assert resume.frontiers("kafka", "t") == {"0": "1"}
    dead.commit(_batch([links[2]]))
    assert resume.frontiers("kafka", "t") == {"0": "3"}  # 4 is still in flight
    dead.commit(_batch([links[4]]))
    assert resume.frontiers("kafka", "t") == {"0": "5"}
    # A fresh reader of the log (another process) sees the same progress.
    assert CheckpointLog(dlq, None).latest().frontier(KEY) == "5"


def test_a_duplicate_only_batch_makes_no_version_and_keeps_progress(tmp_path):
    uri = str(tmp_path / "out")
    links = _chain([0, 1, 2])
    committer = DeltaCommitter(uri, app_id="app")
    assert committer.commit(_batch(links)).version == 0
    again = DeltaCommitter(uri, app_id="app").commit(_batch(links))
    assert again.version is None and again.rows_already_committed == 3
    assert ResumeFrom((TableRef(uri, "app"),)).frontiers("kafka", "t") == {"0": "2"}


# --- several records naming the same predecessor: the furthest one wins ------------------


@pytest.mark.parametrize(
    "links",
    [
        [("7", "5"), ("9", "5")],
        [("9", "5"), ("7", "5")],
        [("7", "5"), ("9", "5"), ("8", "5")],
    ],
)
def test_segments_keep_the_furthest_follower_of_a_position(links):
    # Offset 7 followed 5, then was compacted away and a re-read found 9 after 5.
    assert segments(links) == {"5": "9"}


def test_segments_follow_the_furthest_follower_into_the_rest_of_the_chain():
    links = [("6", "start"), ("7", "6"), ("8", "7"), ("10", "6"), ("11", "10")]
    # 7 -> 8 stays a run of its own: nothing the furthest follower leads to links to it.
    assert segments(links) == {"7": "8", "start": "11"}
    assert segments(list(reversed(links))) == {"7": "8", "start": "11"}


def test_segments_compare_followers_as_integers_not_text():
    assert segments([("10", "5"), ("9", "5")]) == {"5": "10"}
    assert segments([("9", "5"), ("10", "5")]) == {"5": "10"}


_POSITIONS = st.lists(st.integers(0, 200), min_size=1, max_size=30, unique=True).map(sorted)


@st.composite
def _links_with_competing_followers(draw):
    """A chain read twice: the second read skips some records (compacted in between)."""
    positions = draw(_POSITIONS)
    first = _chain(positions)
    kept = [p for p in positions if draw(st.booleans())] or positions[-1:]
    second = _chain(kept)
    links = draw(st.permutations(first + second))
    return positions, links


@given(_links_with_competing_followers(), st.randoms(use_true_random=False))
def test_segments_do_not_depend_on_the_order_links_arrive_in(drawn, rng):
    positions, links = drawn
    shuffled = list(links)
    rng.shuffle(shuffled)
    assert segments(shuffled) == segments(links)
    # Both reads start at "start" and end at the last record: one run covers them.
    assert advance(None, segments(links)) == str(positions[-1])


# --- the stored form and edge cases --------------------------------------------------------


def test_progress_is_stored_as_compact_versioned_json():
    progress = Checkpoint(
        {("kinesis", "s", "a"): PartitionCheckpoint(), KEY: PartitionCheckpoint("7", {"9": "12"})}
    )
    assert progress.to_json() == (
        '{"format":1,"partitions":['
        '{"source":"kafka","stream":"t","partition":"0","frontier":"7","ahead":[["9","12"]]},'
        '{"source":"kinesis","stream":"s","partition":"a","frontier":null,"ahead":[]}]}'
    )


@pytest.mark.parametrize("text", [None, "", '{"format": 1}'])
def test_no_stored_progress_reads_as_none(text):
    assert Checkpoint.from_json(text) == Checkpoint()


def test_no_tables_and_unknown_partitions_have_no_frontier():
    assert Checkpoint.combined([]) == Checkpoint()
    assert Checkpoint().frontier(KEY) is None
    assert Checkpoint({KEY: PartitionCheckpoint("3")}).frontier(("kafka", "t", "1")) is None


@pytest.mark.parametrize(
    ("links", "runs"),
    [
        ([], {}),
        ([("1", "start")], {"start": "1"}),
        ([("3", "2"), ("2", "1")], {"1": "3"}),
        ([("2", "start"), ("1", "start")], {"start": "2"}),
        ([("100", "99"), ("99", "start")], {"start": "100"}),  # integers, not text
    ],
)
def test_segments_examples(links, runs):
    assert segments(links) == runs


def test_advance_walks_only_from_its_frontier():
    runs = {"start": "3", "3": "5", "6": "9"}
    assert advance(None, runs) == "5"
    assert advance("5", runs) == "5"  # 6's predecessor is missing
    assert advance("6", runs) == "9"
    assert advance("10", runs) == "10"


def test_a_sibling_ahead_moves_the_frontier_and_its_runs_are_not_kept_as_own():
    own = PartitionCheckpoint("2", {"5": "7"})
    sibling = PartitionCheckpoint("5", {"9": "12"})
    merged = own.merged({"7": "9"}, sibling)
    # 2 -> (sibling) 5 -> (own) 7 -> (batch) 9 -> (sibling) 12.
    assert merged == PartitionCheckpoint("12", {})
    alone = own.merged({"7": "9"})
    assert alone == PartitionCheckpoint("2", {"5": "7", "7": "9"})


def test_runs_behind_the_frontier_are_dropped_and_runs_past_it_kept():
    progress = PartitionCheckpoint(None, {}).merged({"start": "4", "2": "3", "6": "8", "4": "5"})
    assert progress == PartitionCheckpoint("5", {"6": "8"})


def test_the_longer_of_two_runs_from_the_same_position_is_kept():
    progress = PartitionCheckpoint(None, {"3": "9"}).merged({"3": "5"})
    assert progress.ahead == {"3": "9"}
    progress = PartitionCheckpoint(None, {"3": "5"}).merged({"3": "9"})
    assert progress.ahead == {"3": "9"}


def test_the_highest_sibling_frontier_is_where_the_walk_starts():
    own = PartitionCheckpoint("10")
    merged = own.merged(
        {}, PartitionCheckpoint("9"), PartitionCheckpoint("30"), PartitionCheckpoint()
    )
    assert merged.frontier == "30"
