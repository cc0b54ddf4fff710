"""Kinesis position logic: restrictions, the shard-set tracker, start and resume iterators.

The iterator tests read through moto's in-process Kinesis (no service): a shard
iterator is checked by the records GetRecords returns from it.
"""

import copy
from datetime import datetime, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import SourceUnavailableError
from transforms.sources.kinesis import _PlanDoFn, _ReadShardsDoFn, _ShardRestrictions
from transforms.sources.kinesis_shards import (
    ShardRestriction,
    ShardSetTracker,
    ShardState,
    components,
    ready_shards,
    split_limit,
)

# -- ShardRestriction.finished and ready_shards ------------------------------------------


def _restriction(*states, **kwargs):
    return ShardRestriction({s.shard_id: s for s in states}, **kwargs)


def test_a_restriction_is_finished_when_every_shard_is_done():
    assert not _restriction(ShardState("a"), ShardState("b", done=True)).finished()
    assert _restriction(ShardState("a", done=True), ShardState("b", done=True)).finished()
    assert _restriction().finished()  # nothing to read


@pytest.mark.parametrize(
    ("bounded", "max_records", "emitted", "finished"),
    [
        (True, 3, 3, True),  # the budget is spent
        (True, 3, 4, True),
        (True, 3, 2, False),  # one record left
        (True, 0, 100, False),  # 0: no budget
        (False, 3, 3, False),  # a streaming read has no budget
    ],
)
def test_a_bounded_read_is_finished_when_its_budget_is_spent(
    bounded, max_records, emitted, finished
):
    restriction = _restriction(
        ShardState("a"), bounded=bounded, max_records=max_records, emitted=emitted
    )
    assert restriction.finished() is finished


def test_ready_shards_are_unfinished_shards_whose_parents_in_the_read_are_done():
    restriction = _restriction(
        ShardState("p", done=True),
        ShardState("q"),
        ShardState("c1", parents=("p",)),  # parent done: ready
        ShardState("c2", parents=("p", "q")),  # merge: q not done yet
        ShardState("c3", parents=("gone",)),  # parent outside the read: ready
        ShardState("d", done=True),
    )
    assert [s.shard_id for s in ready_shards(restriction)] == ["q", "c1", "c3"]


# -- components and split_limit -----------------------------------------------------------


def test_components_join_shards_through_splits_and_merges():
    shards = [
        ShardState("a"),
        ShardState("b"),
        ShardState("x"),
        ShardState("a1", ("a",)),
        ShardState("a2", ("a",)),
        ShardState("m", ("a2", "b")),  # a merge joins a's and b's families
        ShardState("y", ("unknown",)),
    ]
    groups = [[s.shard_id for s in group] for group in components(shards)]
    assert groups == [["a", "b", "a1", "a2", "m"], ["x"], ["y"]]


@st.composite
def _lineages(draw):
    """Shards where each may name up to two earlier shards as parents."""
    count = draw(st.integers(1, 12))
    shards = []
    for index in range(count):
        parents = draw(st.lists(st.integers(0, max(index - 1, 0)), max_size=2, unique=True))
        named = tuple(f"s{p}" for p in parents if p < index)
        shards.append(ShardState(f"s{index}", named))
    return shards


@given(_lineages())
def test_components_partition_the_shards_and_keep_families_together(shards):
    groups = components(shards)
    flat = [s.shard_id for group in groups for s in group]
    assert sorted(flat) == sorted(s.shard_id for s in shards)  # each shard once
    group_of = {s.shard_id: i for i, group in enumerate(groups) for s in group}
    for state in shards:
        for parent in state.parents:
            assert group_of[parent] == group_of[state.shard_id]
    order = [s.shard_id for s in shards]
    for group in groups:  # each group keeps the input order
        ids = [s.shard_id for s in group]
        assert ids == sorted(ids, key=order.index)


@given(st.integers(0, 10_000), st.integers(1, 50))
def test_split_limit_shares_a_total_as_evenly_as_integers_allow(total, parts):
    shares = list(split_limit(total, parts))
    assert len(shares) == parts
    if total == 0:
        assert shares == [0] * parts  # no limit stays no limit
        return
    assert sum(shares) == total
    assert max(shares) - min(shares) <= 1
    assert shares == sorted(shares, reverse=True)  # the larger shares first


# -- ShardSetTracker ---------------------------------------------------------------------


def test_claiming_a_record_moves_the_shard_on_and_counts_it():
    original = _restriction(ShardState("a"), ShardState("b"))
    tracker = ShardSetTracker(original)
    assert tracker.try_claim(
        ("record", "a", "49590338271490256608559692538361571095921575989136588898")
    )
    assert tracker.try_claim(
        ("record", "a", "49590338271490256608559692538361571095921575989136588899")
    )
    current = tracker.current_restriction()
    assert current.shards["a"].last_sequence.endswith("899")
    assert current.emitted == 2
    assert current.shards["b"].last_sequence is None
    # The tracker works on its own copy of the restriction.
    assert original.shards["a"].last_sequence is None and original.emitted == 0


def test_claims_of_unknown_or_finished_shards_are_refused():
    tracker = ShardSetTracker(_restriction(ShardState("a"), ShardState("b", done=True)))
    assert not tracker.try_claim(("record", "zz", "1"))
    assert not tracker.try_claim(("record", "b", "1"))
    assert not tracker.try_claim(("end", "b", {}))
    assert tracker.current_restriction().emitted == 0
    with pytest.raises(ValueError, match="unknown claim 'skip'"):
        tracker.try_claim(("skip", "a", None))


def test_a_bounded_read_stops_claiming_records_at_its_budget():
    tracker = ShardSetTracker(
        _restriction(ShardState("a"), ShardState("b"), bounded=True, max_records=2)
    )
    assert tracker.try_claim(("record", "a", "1"))
    assert tracker.try_claim(("record", "b", "1"))
    assert not tracker.try_claim(("record", "a", "2"))
    assert tracker.current_restriction().shards["a"].last_sequence == "1"
    assert tracker.current_restriction().emitted == 2
    tracker.check_done()  # the budget is spent: nothing is left to read


def test_ending_a_shard_adds_its_children_once():
    tracker = ShardSetTracker(_restriction(ShardState("a"), ShardState("b")))
    assert tracker.try_claim(("end", "a", {"c": ("a", "b")}))
    assert tracker.try_claim(("record", "c", "5"))
    # b's end names the same child: it is not replaced (its progress stays).
    assert tracker.try_claim(("end", "b", {"c": ("a", "b"), "d": ["b"]}))
    shards = tracker.current_restriction().shards
    assert list(shards) == ["a", "b", "c", "d"]
    assert shards["a"].done and shards["b"].done
    assert (shards["c"].parents, shards["c"].last_sequence, shards["c"].done) == (
        ("a", "b"),
        "5",
        False,
    )
    assert shards["d"].parents == ("b",) and isinstance(shards["d"].parents, tuple)
    assert [s.shard_id for s in shards.values()] == ["a", "b", "c", "d"]
    assert [s.shard_id for s in ready_shards(tracker.current_restriction())] == ["c", "d"]


def test_a_checkpoint_leaves_an_empty_primary_and_the_rest_as_residual():
    restriction = _restriction(ShardState("a"), ShardState("b"), bounded=True, max_records=9)
    tracker = ShardSetTracker(restriction)
    tracker.try_claim(("record", "a", "7"))
    expected_residual = copy.deepcopy(tracker.current_restriction())
    assert tracker.try_split(0.5) is None  # only checkpoints (fraction 0) split
    primary, residual = tracker.try_split(0)
    assert primary == ShardRestriction(bounded=True)
    assert residual == expected_residual
    assert tracker.current_restriction() == primary
    assert tracker.try_split(0) is None  # already stopped
    assert not tracker.try_claim(("record", "b", "1"))
    assert not tracker.try_claim(("end", "b", {}))
    tracker.check_done()
    assert residual.shards["a"].last_sequence == "7"
    residual.shards["a"].last_sequence = "8"  # the residual is a copy, not the live state
    assert expected_residual.shards["a"].last_sequence == "7"


def test_the_residual_shares_no_state_with_the_restriction_the_tracker_held():
    tracker = ShardSetTracker(_restriction(ShardState("a"), ShardState("b")))
    tracker.try_claim(("record", "a", "7"))
    held = tracker.current_restriction()
    _, residual = tracker.try_split(0)
    residual.shards["a"].last_sequence = "9"  # the reader that takes the residual moves on
    residual.shards["c"] = ShardState("c")
    assert held.shards["a"].last_sequence == "7" and "c" not in held.shards


def test_a_finished_restriction_does_not_split():
    tracker = ShardSetTracker(_restriction(ShardState("a")))
    assert tracker.try_claim(("end", "a", {}))
    assert tracker.try_split(0) is None
    tracker.check_done()


def test_check_done_names_the_unfinished_shards():
    tracker = ShardSetTracker(_restriction(ShardState("a"), ShardState("b"), ShardState("c")))
    tracker.try_claim(("end", "b", {}))
    with pytest.raises(ValueError, match=r"shards \['a', 'c'\] were not finished"):
        tracker.check_done()


@pytest.mark.parametrize("bounded", [True, False])
def test_the_tracker_is_bounded_as_its_restriction(bounded):
    assert ShardSetTracker(_restriction(ShardState("a"), bounded=bounded)).is_bounded() is bounded


# -- _ShardRestrictions (the restriction provider) ----------------------------------------


def test_a_streaming_restriction_is_not_split():
    restriction = _restriction(ShardState("a"), ShardState("b"), max_records=5)
    provider = _ShardRestrictions()
    assert list(provider.split(restriction, restriction)) == [restriction]
    assert provider.truncate(restriction, restriction) is None
    assert provider.initial_restriction(restriction) is restriction


def test_a_bounded_restriction_splits_per_family_sharing_the_budget():
    restriction = _restriction(
        ShardState("a"),
        ShardState("b"),
        ShardState("c", ("a",)),
        bounded=True,
        stop_arrival_ms=1234,
        max_records=5,
        emitted=0,
    )
    provider = _ShardRestrictions()
    parts = list(provider.split(restriction, restriction))
    assert parts == [
        ShardRestriction(
            {"a": ShardState("a"), "c": ShardState("c", ("a",))},
            bounded=True,
            stop_arrival_ms=1234,
            max_records=3,
        ),
        ShardRestriction({"b": ShardState("b")}, bounded=True, stop_arrival_ms=1234, max_records=2),
    ]
    assert provider.truncate(restriction, restriction) is restriction


def test_restriction_size_counts_unfinished_shards_at_least_one():
    provider = _ShardRestrictions()
    live = _restriction(ShardState("a"), ShardState("b"), ShardState("c", done=True))
    assert provider.restriction_size(live, live) == 2
    done = _restriction(ShardState("a", done=True))
    assert provider.restriction_size(done, done) == 1


def test_the_provider_tracks_the_restriction_it_is_given():
    restriction = _restriction(ShardState("a"), bounded=True)
    tracker = _ShardRestrictions().create_tracker(restriction)
    assert isinstance(tracker, ShardSetTracker)
    assert tracker.current_restriction() == restriction and tracker.is_bounded()


# -- where a shard starts -----------------------------------------------------------------


def _start(plan, shard_id="s-0", started_ms=1_700_000_000_000):
    return _PlanDoFn({}, plan)._start(shard_id, started_ms)


def test_latest_is_pinned_to_the_read_start_time():
    assert _start({"iterator_type": "LATEST"}) == ("AT_TIMESTAMP", "1700000000000")


def test_start_positions_per_iterator_type():
    assert _start({"iterator_type": "TRIM_HORIZON"}) == ("TRIM_HORIZON", None)
    plan = {"iterator_type": "AT_TIMESTAMP", "start_timestamp_ms": 1_600_000_000_123}
    assert _start(plan) == ("AT_TIMESTAMP", "1600000000123")
    plan = {"iterator_type": "AFTER_SEQUENCE_NUMBER", "start_sequences": {"s-0": "42", "s-1": ""}}
    assert _start(plan) == ("AFTER_SEQUENCE_NUMBER", "42")
    assert _start(plan, "s-1") == ("TRIM_HORIZON", None)  # no sequence: from the start
    assert _start(plan, "s-9") == ("TRIM_HORIZON", None)


# -- the iterator a shard is read from (moto's in-process Kinesis) ------------------------

STREAM = "positions"


@pytest.fixture
def kinesis(monkeypatch):
    moto = pytest.importorskip("moto", reason="the iterator tests need moto (test extra)")
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with moto.mock_aws():
        client = boto3.client("kinesis", region_name="us-east-1")
        client.create_stream(StreamName=STREAM, ShardCount=1)
        yield client


def _put(client, values):
    shard = client.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    sequences = [
        client.put_record(StreamName=STREAM, Data=v, PartitionKey="k")["SequenceNumber"]
        for v in values
    ]
    return shard, sequences


def _reader(client):
    reader = _ReadShardsDoFn(STREAM, {}, {})
    reader._client = client
    return reader


def _read_from(client, iterator):
    return [bytes(r["Data"]) for r in client.get_records(ShardIterator=iterator)["Records"]]


def test_a_shard_with_progress_resumes_after_its_last_sequence(kinesis):
    shard, sequences = _put(kinesis, [b"a", b"b", b"c"])
    reader = _reader(kinesis)
    # Checkpoint wins over the configured start.
    state = ShardState(shard, start_type="AT_TIMESTAMP", start_value="0")
    state.last_sequence = sequences[0]
    assert _read_from(kinesis, reader._iterator(state)) == [b"b", b"c"]


@pytest.mark.parametrize(
    ("start_type", "start_value", "expected"),
    [
        ("TRIM_HORIZON", None, [b"a", b"b", b"c"]),
        ("AFTER_SEQUENCE_NUMBER", 1, [b"c"]),  # index into the sequences
        ("AT_TIMESTAMP", "0", [b"a", b"b", b"c"]),
        ("AT_TIMESTAMP", "future", []),
        ("LATEST", None, [b"a", b"b", b"c"]),  # planned as AT_TIMESTAMP; else from the start
    ],
)
def test_a_fresh_shard_starts_where_its_start_type_says(kinesis, start_type, start_value, expected):
    shard, sequences = _put(kinesis, [b"a", b"b", b"c"])
    if start_type == "AFTER_SEQUENCE_NUMBER":
        start_value = sequences[start_value]
    elif start_value == "future":
        start_value = str(int(datetime.now(timezone.utc).timestamp() * 1000) + 3_600_000)
    state = ShardState(shard, start_type=start_type, start_value=start_value)
    assert _read_from(kinesis, _reader(kinesis)._iterator(state)) == expected


def test_an_iterator_is_reused_for_the_same_shard_and_sequence(kinesis):
    shard, sequences = _put(kinesis, [b"a", b"b"])
    reader = _reader(kinesis)
    state = ShardState(shard, last_sequence=sequences[0])
    reader._iterators[(shard, sequences[0])] = "kept-iterator"
    assert reader._iterator(state) == "kept-iterator"
    state.last_sequence = sequences[1]  # moved on: a new iterator
    assert reader._iterator(state) != "kept-iterator"


def test_an_iterator_for_a_missing_shard_is_a_source_error(kinesis):
    reader = _reader(kinesis)
    with pytest.raises(SourceUnavailableError, match=f"GetShardIterator failed on {STREAM}/nope"):
        reader._iterator(ShardState("nope"))


def test_an_endpoint_that_does_not_answer_is_unreachable_not_a_source_error(monkeypatch):
    import boto3
    from botocore.config import Config

    from transforms.sources.kinesis import _Unreachable

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    closed = boto3.client(
        "kinesis",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # the discard port: nothing listens
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    reader = _reader(closed)
    with pytest.raises(_Unreachable, match=f"^{STREAM}/s-0: "):
        reader._iterator(ShardState("s-0"))


# -- planning: every shard, its parents, where it resumes (moto's in-process Kinesis) -----


def _split_first_shard(client):
    shard = client.list_shards(StreamName=STREAM)["Shards"][0]
    low, high = (int(k) for k in shard["HashKeyRange"].values())
    client.split_shard(
        StreamName=STREAM,
        ShardToSplit=shard["ShardId"],
        NewStartingHashKey=str((low + high) // 2),
    )
    return shard["ShardId"]


def _plan_stream(plan, resume_from=None):
    dofn = _PlanDoFn({"region_name": "us-east-1", "endpoint_url": None}, plan, resume_from)
    (restriction,) = dofn.process(STREAM)
    return restriction


def test_planning_lists_every_shard_with_its_parents_in_the_read(kinesis):
    parent = _split_first_shard(kinesis)
    plan = {"iterator_type": "TRIM_HORIZON", "bounded": True, "max_records": 5}
    before = int(datetime.now(timezone.utc).timestamp() * 1000)
    restriction = _plan_stream(plan)
    after = int(datetime.now(timezone.utc).timestamp() * 1000)
    children = [s for s in restriction.shards.values() if s.parents]
    assert [s.parents for s in children] == [(parent,), (parent,)]
    assert restriction.shards[parent].parents == ()
    assert all(s.start_type == "TRIM_HORIZON" and s.last_sequence is None for s in children)
    assert restriction.bounded and restriction.max_records == 5
    assert before <= restriction.stop_arrival_ms <= after
    assert not restriction.finished()


def test_a_streaming_plan_has_no_stop_time(kinesis):
    plan = {"iterator_type": "LATEST", "bounded": False, "max_records": 0}
    restriction = _plan_stream(plan)
    assert restriction.stop_arrival_ms is None and not restriction.bounded
    (state,) = restriction.shards.values()
    assert state.start_type == "AT_TIMESTAMP" and state.start_value.isdigit()


def test_planning_resumes_each_shard_after_its_committed_sequence(kinesis, tmp_path, caplog):
    import pyarrow as pa

    from transforms.checkpoint.log import ResumeFrom, TableRef
    from transforms.sinks.delta_commit import DeltaCommitter

    shard, sequences = _put(kinesis, [b"a", b"b"])
    n = len(sequences)
    batch = pa.table(
        {
            "_record_id": [f"id{i}" for i in range(n)],
            "_source": ["kinesis"] * n,
            "_stream": [STREAM] * n,
            "_partition": [shard] * n,
            "_position": sequences,
            "_offset": pa.array([None] * n, pa.int64()),
            "_event_time": pa.array([0] * n, pa.timestamp("ms", tz="UTC")),
            "_prev_position": ["start", sequences[0]],
        }
    )
    table = TableRef(str(tmp_path / "out"), "app")
    DeltaCommitter(table.uri, app_id=table.app_id).commit(batch)
    plan = {"iterator_type": "TRIM_HORIZON", "bounded": False, "max_records": 0}
    with caplog.at_level("INFO", logger="transforms.sources.kinesis"):
        restriction = _plan_stream(plan, ResumeFrom((table,)))
    assert restriction.shards[shard].last_sequence == sequences[1]
    assert f"{STREAM}: resuming 1 shards after their committed sequences" in [
        r.getMessage() for r in caplog.records
    ]
    assert _read_from(kinesis, _reader(kinesis)._iterator(restriction.shards[shard])) == []


def test_a_stream_that_cannot_be_listed_is_a_source_error(kinesis):
    plan = {"iterator_type": "TRIM_HORIZON", "bounded": True, "max_records": 0}
    dofn = _PlanDoFn({"region_name": "us-east-1", "endpoint_url": None}, plan)
    with pytest.raises(
        SourceUnavailableError, match="cannot list the shards of Kinesis stream 'nope'"
    ):
        list(dofn.process("nope"))


class _ThrottlingClient:
    """A Kinesis client whose every call is throttled (ProvisionedThroughputExceeded)."""

    def get_shard_iterator(self, **kwargs):
        from botocore.exceptions import ClientError

        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}}
        raise ClientError(error, "GetShardIterator")


def test_a_throttled_iterator_request_backs_off_instead_of_failing():
    from transforms.sources.kinesis import _Throttled

    with pytest.raises(_Throttled):
        _reader(_ThrottlingClient())._iterator(ShardState("s-0"))


def test_an_at_timestamp_start_does_not_depend_on_the_machine_time_zone(kinesis, monkeypatch):
    import time

    shard, _ = _put(kinesis, [b"a"])
    in_an_hour = str(int(datetime.now(timezone.utc).timestamp() * 1000) + 3_600_000)
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        state = ShardState(shard, start_type="AT_TIMESTAMP", start_value=in_an_hour)
        assert _read_from(kinesis, _reader(kinesis)._iterator(state)) == []
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


class _PagedShards:
    """A client listing a stream's shards in two pages, recording what it was asked."""

    def __init__(self):
        self.asked = []

    def list_shards(self, **kwargs):
        self.asked.append(kwargs)
        if "NextToken" not in kwargs:
            return {"Shards": [{"ShardId": "s-0"}], "NextToken": "page-2"}
        return {"Shards": [{"ShardId": "s-1"}]}


def test_every_page_of_shards_is_listed():
    from transforms.sources.kinesis import _list_shards

    client = _PagedShards()
    assert [s["ShardId"] for s in _list_shards(client, STREAM)] == ["s-0", "s-1"]
    # Kinesis refuses a StreamName beside a NextToken.
    assert client.asked == [{"StreamName": STREAM}, {"NextToken": "page-2"}]


def test_a_merged_shard_has_both_parents(kinesis):
    kinesis.update_shard_count(StreamName=STREAM, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    first, second = (
        s["ShardId"]
        for s in kinesis.list_shards(StreamName=STREAM)["Shards"]
        if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {})
    )
    kinesis.merge_shards(StreamName=STREAM, ShardToMerge=first, AdjacentShardToMerge=second)
    plan = {"iterator_type": "TRIM_HORIZON", "bounded": True, "max_records": 0}
    restriction = _plan_stream(plan)
    merged = [s for s in restriction.shards.values() if len(s.parents) == 2]
    assert [set(s.parents) for s in merged] == [{first, second}]


def test_planning_starts_each_shard_after_its_configured_sequence(kinesis):
    shard, sequences = _put(kinesis, [b"a", b"b"])
    plan = {
        "iterator_type": "AFTER_SEQUENCE_NUMBER",
        "bounded": True,
        "max_records": 0,
        "start_sequences": {shard: sequences[0]},
    }
    state = _plan_stream(plan).shards[shard]
    assert (state.start_type, state.start_value) == ("AFTER_SEQUENCE_NUMBER", sequences[0])
