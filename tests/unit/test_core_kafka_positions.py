"""Kafka position logic: start, stop and resume offsets, shared limits, group offsets.

The broker is stood in for by ``_Topic``, a partition log answering the handful of
librdkafka ``Consumer`` calls planning makes (metadata, watermarks, committed
offsets, offsets for a time, and reading to partition EOF). The reads themselves,
against a real broker, are in tests/integration/test_kafka_read.py.
"""

from types import SimpleNamespace

import apache_beam as beam
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from schemas.errors import ConfigError, SourceUnavailableError
from transforms.checkpoint.frontier import CHAIN_START, Checkpoint, PartitionCheckpoint
from transforms.checkpoint.group_offsets import CommitGroupOffsets
from transforms.sources.kafka_partitions import (
    UNBOUNDED,
    PartitionPlan,
    PartitionRead,
    _resume_offset,
    _split_limit,
    partition_numbers,
    plan_partition_reads,
)

TOPIC = "t"


class _Message:
    def __init__(self, partition, offset, error=None):
        self._partition, self._offset, self._error = partition, offset, error

    def partition(self):
        return self._partition

    def offset(self):
        return self._offset

    def error(self):
        return self._error


class _Topic:
    """One topic's partitions as a broker answers for them.

    Args:
        offsets: partition -> the offsets it holds (gaps allowed: compaction).
        reported_high: partition -> a wrong high watermark the broker reports.
        committed: partition -> the group's committed offset.
        times: partition -> {offset: timestamp ms}.
        eof: whether the broker ever reports partition EOF.
    """

    def __init__(self, offsets, *, reported_high=None, committed=None, times=None, eof=True):
        self.offsets = {p: sorted(o) for p, o in offsets.items()}
        self.reported_high = reported_high or {}
        self.committed_offsets = dict(committed or {})
        self.times = times or {}
        self.eof = eof
        self.assigned = []
        self.probes = []
        self.commits = []
        self.unreachable = False
        self.topic_error = ""

    def _check(self, timeout=1.0, call=""):
        assert timeout is not None and 0 < timeout < 60, "every broker call is bounded"
        if self.unreachable is True or call in (self.unreachable or ()):
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down, pw=hunter2"))

    def list_topics(self, topic, timeout):
        self._check(timeout)
        topics = {}
        if topic == TOPIC:
            error = None
            if self.topic_error:
                error = SimpleNamespace(str=lambda: self.topic_error)
            topics[TOPIC] = SimpleNamespace(partitions=dict.fromkeys(self.offsets), error=error)
        return SimpleNamespace(topics=topics)

    def _end(self, partition):
        held = self.offsets[partition]
        return held[-1] + 1 if held else 0

    def get_watermark_offsets(self, tp, timeout):
        self._check(timeout, "get_watermark_offsets")
        held = self.offsets[tp.partition]
        low = held[0] if held else 0
        return low, self.reported_high.get(tp.partition, self._end(tp.partition))

    def committed(self, tps, timeout):
        self._check(timeout, "committed")
        return [
            TopicPartition(TOPIC, tp.partition, self.committed_offsets.get(tp.partition, -1001))
            for tp in tps
        ]

    def offsets_for_times(self, tps, timeout):
        self._check(timeout, "offsets_for_times")
        found = []
        for tp in tps:
            times = self.times.get(tp.partition, {})
            at = [o for o in self.offsets[tp.partition] if times.get(o, -1) >= tp.offset]
            found.append(TopicPartition(TOPIC, tp.partition, at[0] if at else -1))
        return found

    def assign(self, tps):
        self.assigned = [(tp.partition, tp.offset) for tp in tps]
        self.probes.append(list(self.assigned))

    def consume(self, count, timeout):
        assert isinstance(count, int) and count > 0
        self._check(timeout)
        messages = []
        for partition, position in self.assigned:
            messages += [_Message(partition, o) for o in self.offsets[partition] if o >= position]
            if self.eof:
                eof = KafkaError(KafkaError._PARTITION_EOF)
                messages.append(_Message(partition, self._end(partition), eof))
        self.assigned = []
        return messages

    def unassign(self):
        self.assigned = []

    def commit(self, offsets, asynchronous):
        assert asynchronous is False, "a group commit waits for the broker's answer"
        self._check()
        self.commits.append([(tp.partition, tp.offset) for tp in offsets])
        for tp in offsets:
            self.committed_offsets[tp.partition] = tp.offset


def _plan(topic, *, resume_after=None, **kwargs):
    config = {"bootstrap.servers": "127.0.0.1:9", "sasl.password": "hunter2"}
    plan = PartitionPlan(**{"timeout_s": 2.0, **kwargs})
    return plan_partition_reads(topic, TOPIC, plan, config=config, resume_after=resume_after)


def _ranges(reads):
    return {r.partition: (r.start_offset, r.stop_offset) for r in reads}


# Partition 0 holds 3..9 (3 removed by retention before), 1 is empty, 2 holds a compacted run.
def _topic(**kwargs):
    return _Topic({0: range(3, 10), 1: [], 2: [0, 1, 5, 8]}, **kwargs)


# -- start positions ------------------------------------------------------------------------


def test_earliest_starts_at_each_log_start_and_streams_unbounded():
    reads = _plan(_topic())
    assert reads == [
        PartitionRead(TOPIC, 0, 3, UNBOUNDED, 0, -1, CHAIN_START),
        PartitionRead(TOPIC, 1, 0, UNBOUNDED, 0, -1, CHAIN_START),
        PartitionRead(TOPIC, 2, 0, UNBOUNDED, 0, -1, CHAIN_START),
    ]


def test_bounded_reads_stop_at_the_end_found_by_partition_eof_not_the_watermark():
    # The broker reports the base offset of the last batch as high watermark (7, 5).
    topic = _topic(reported_high={0: 7, 2: 5})
    assert _ranges(_plan(topic, bounded=True)) == {0: (3, 10), 1: (0, 0), 2: (0, 9)}


def test_the_end_is_probed_from_the_last_watermark_not_the_whole_partition():
    topic = _topic(reported_high={0: 7, 2: 5})
    _plan(topic, bounded=True)
    assert topic.probes == [[(0, 6), (1, 0), (2, 4)]]


def test_latest_starts_at_the_end():
    assert _ranges(_plan(_topic(), start="latest")) == {
        0: (10, UNBOUNDED),
        1: (0, UNBOUNDED),
        2: (9, UNBOUNDED),
    }
    assert _ranges(_plan(_topic(), start="latest", bounded=True)) == {
        0: (10, 10),
        1: (0, 0),
        2: (9, 9),
    }


def test_a_group_offset_removed_by_retention_starts_at_the_log_start():
    topic = _topic(committed={0: 1, 2: 0})  # partition 0 starts at 3 now
    assert _ranges(_plan(topic, start="committed", bounded=True)) == {
        0: (3, 10),
        1: (0, 0),
        2: (0, 9),
    }


def test_earliest_ignores_explicit_offsets():
    reads = _plan(_topic(), start="earliest", start_offsets={0: 8, 2: 5}, bounded=True)
    assert _ranges(reads) == {0: (3, 10), 1: (0, 0), 2: (0, 9)}


def test_a_timestamp_at_the_first_offset_starts_there():
    times = {0: {o: 1000 * o for o in range(3, 10)}, 2: {0: 0, 1: 100, 5: 7000, 8: 9000}}
    reads = _plan(_topic(times=times), start="timestamp", start_timestamp_ms=0, bounded=True)
    assert _ranges(reads) == {0: (3, 10), 1: (0, 0), 2: (0, 9)}


def test_committed_starts_at_the_group_offset_or_the_log_start():
    topic = _topic(committed={0: 6, 2: 0})
    assert _ranges(_plan(topic, start="committed", bounded=True)) == {
        0: (6, 10),
        1: (0, 0),
        2: (0, 9),
    }


def test_timestamp_starts_at_the_first_record_at_or_after_it_and_filters_older():
    times = {0: {o: 1000 * o for o in range(3, 10)}, 2: {0: 0, 1: 100, 5: 7000, 8: 9000}}
    reads = _plan(_topic(times=times), start="timestamp", start_timestamp_ms=7000, bounded=True)
    # Partition 1 has no record at or after the time: it starts at its end.
    assert _ranges(reads) == {0: (7, 10), 1: (0, 0), 2: (5, 9)}
    assert {r.min_timestamp_ms for r in reads} == {7000}


def test_explicit_offsets_start_there_but_never_before_the_log_start():
    reads = _plan(_topic(), start="offsets", start_offsets={0: 1, 2: 5}, bounded=True)
    assert _ranges(reads) == {0: (3, 10), 1: (0, 0), 2: (5, 9)}
    reads = _plan(_topic(), start="offsets", start_offsets={0: 8})
    assert _ranges(reads)[0] == (8, UNBOUNDED)
    assert {r.min_timestamp_ms for r in reads} == {-1}


def test_a_start_beyond_the_end_reads_nothing_in_a_bounded_read():
    reads = _plan(_topic(), start="offsets", start_offsets={0: 50}, bounded=True)
    assert _ranges(reads)[0] == (50, 50)


# -- resuming from a sink's committed frontier ----------------------------------------------


def test_resuming_starts_after_the_committed_frontier_and_links_to_it():
    reads = _plan(_topic(), start="latest", resume_after={0: 5, 2: 1}, bounded=True)
    by_partition = {r.partition: r for r in reads}
    assert (by_partition[0].start_offset, by_partition[0].first_prev) == (6, "5")
    assert (by_partition[2].start_offset, by_partition[2].first_prev) == (2, "1")
    # A partition the sink never committed keeps the configured start.
    assert (by_partition[1].start_offset, by_partition[1].first_prev) == (0, CHAIN_START)


def test_resuming_past_retention_starts_at_the_log_start(caplog):
    with caplog.at_level("WARNING", logger="transforms.sources.kafka_partitions"):
        reads = _plan(_topic(), resume_after={0: 0})  # 1 and 2 are gone
    assert (reads[0].start_offset, reads[0].first_prev) == (3, "0")
    assert [r.getMessage() for r in caplog.records] == [
        "t[0]: offsets 1..2 were removed by retention before they were read; resuming at 3"
    ]


@pytest.mark.parametrize(
    ("committed", "low", "expected"),
    [(4, 3, 5), (3, 3, 4), (2, 3, 3), (1, 3, 3), (9, 0, 10), (-1, 0, 0)],
)
def test_resume_offset(committed, low, expected):
    assert _resume_offset(TOPIC, 0, committed, low) == expected


def test_resuming_past_retention_warns_which_offsets_were_lost(caplog):
    with caplog.at_level("WARNING", logger="transforms.sources.kafka_partitions"):
        assert _resume_offset(TOPIC, 4, 3, 4) == 4  # nothing was lost: no warning
        assert caplog.records == []
        assert _resume_offset(TOPIC, 4, 1, 7) == 7
    (message,) = [r.getMessage() for r in caplog.records]
    assert message == (
        "t[4]: offsets 2..6 were removed by retention before they were read; resuming at 7"
    )


# -- record limits -------------------------------------------------------------------------


def test_a_record_limit_is_shared_and_bounds_the_read():
    reads = _plan(_topic(), max_records=6)  # bounded by the limit alone
    assert reads == [
        PartitionRead(TOPIC, 0, 3, 10, 3, -1, CHAIN_START),
        PartitionRead(TOPIC, 1, 0, 0, 0, -1, CHAIN_START),  # no share: an empty range
        PartitionRead(TOPIC, 2, 0, 9, 3, -1, CHAIN_START),
    ]


def test_a_limit_above_the_backlog_takes_each_partition_s_whole_range():
    times = {0: dict.fromkeys(range(3, 10), 0), 2: dict.fromkeys([0, 1, 5, 8], 0)}
    reads = _plan(
        _topic(times=times),
        max_records=20,
        start="timestamp",
        start_timestamp_ms=0,
        resume_after={2: 1},
    )
    assert reads == [
        PartitionRead(TOPIC, 0, 3, 10, 7, 0, CHAIN_START),
        PartitionRead(TOPIC, 1, 0, 0, 0, 0, CHAIN_START),
        PartitionRead(TOPIC, 2, 2, 9, 7, 0, "1"),
    ]


def test_a_streaming_read_from_the_start_does_not_look_for_the_end():
    topic = _topic()
    _plan(topic, start="earliest")
    _plan(topic, start="committed")
    _plan(topic, start="offsets", start_offsets={0: 5})
    assert topic.probes == []


def test_a_streaming_read_from_a_time_starts_at_the_end_where_nothing_is_newer():
    times = {0: {o: 1000 * o for o in range(3, 10)}, 2: {0: 0, 1: 100, 5: 7000, 8: 9000}}
    reads = _plan(_topic(times=times), start="timestamp", start_timestamp_ms=8500)
    assert _ranges(reads) == {0: (9, UNBOUNDED), 1: (0, UNBOUNDED), 2: (8, UNBOUNDED)}


def test_a_start_time_filters_only_when_the_read_starts_from_a_time():
    reads = _plan(_topic(), start="earliest", start_timestamp_ms=5000)
    assert {r.min_timestamp_ms for r in reads} == {-1}


def test_a_partition_without_a_share_of_the_limit_reads_nothing():
    reads = _plan(_Topic({0: range(10), 1: range(10)}), max_records=1)
    assert [(r.start_offset, r.stop_offset, r.max_records) for r in reads] == [
        (0, 10, 1),
        (0, 0, 0),
    ]


@given(
    st.integers(0, 500),
    st.dictionaries(st.integers(0, 20), st.integers(0, 100), min_size=1, max_size=8),
)
def test_split_limit_fills_backlogs_evenly_up_to_the_limit(limit, available):
    quota = _split_limit(limit, available)
    assert set(quota) == set(available)
    assert sum(quota.values()) == min(limit, sum(available.values()))
    for p, q in quota.items():
        assert 0 <= q <= available[p]
        if q < available[p]:  # a partition short of its backlog got no less than others - 1
            assert all(q >= other - 1 for other in quota.values())


# -- which partitions ------------------------------------------------------------------------


def test_chosen_partitions_are_planned_in_the_order_given():
    reads = _plan(_topic(), partitions=[2, 0])
    assert [r.partition for r in reads] == [2, 0]
    assert partition_numbers(_topic(), TOPIC, config={}, timeout_s=1) == [0, 1, 2]
    down = _topic()
    down.unreachable = True
    config = {"bootstrap.servers": "127.0.0.1:9"}
    with pytest.raises(
        SourceUnavailableError, match=r"bootstrap\.servers=127\.0\.0\.1:9 within 1s"
    ):
        partition_numbers(down, TOPIC, config=config, timeout_s=1)


def test_partitions_the_topic_does_not_have_are_refused():
    with pytest.raises(ConfigError, match=r"partitions: topic 't' has no partitions \[5, 7\]"):
        _plan(_topic(), partitions=[0, 5, 7])


def test_a_missing_topic_is_a_config_error():
    topic = _topic()
    topic.topic_error = "Broker: Topic authorization failed"
    with pytest.raises(
        ConfigError, match=r"^topic: Kafka topic 't' is not readable: Broker: Topic authorization"
    ):
        _plan(topic)
    with pytest.raises(
        ConfigError, match=r"^topic: Kafka topic 'other' is not readable: not found$"
    ):
        plan_partition_reads(_topic(), "other", PartitionPlan(timeout_s=1), config={})


def test_an_unreachable_broker_is_a_source_error_without_secrets():
    topic = _topic()
    topic.unreachable = True
    with pytest.raises(SourceUnavailableError, match="cannot reach Kafka") as caught:
        _plan(topic)
    assert "broker down" in str(caught.value) and "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("call", "start"),
    [
        ("committed", "committed"),
        ("offsets_for_times", "timestamp"),
        ("get_watermark_offsets", "earliest"),
    ],
)
def test_a_broker_failing_any_look_up_is_a_source_error_naming_it(call, start):
    topic = _topic()
    topic.unreachable = {call}
    with pytest.raises(SourceUnavailableError) as caught:
        _plan(topic, start=start, start_timestamp_ms=0)
    assert str(caught.value).startswith(
        "cannot reach Kafka at bootstrap.servers=127.0.0.1:9 within 2s: KafkaError{"
    )
    assert "broker down" in str(caught.value) and "hunter2" not in str(caught.value)


def test_no_partition_eof_within_the_timeout_is_a_source_error():
    with pytest.raises(
        SourceUnavailableError,
        match=r"^no end-of-partition from t partitions \[0, 1, 2\] within 0s; is the broker "
        r"reachable at 127\.0\.0\.1:9\?$",
    ):
        _plan(_topic(eof=False), bounded=True, timeout_s=0.3)


# -- group offsets follow the table ----------------------------------------------------------


def _progress(**frontiers):
    return Checkpoint(
        {("kafka", TOPIC, p): PartitionCheckpoint(f) for p, f in frontiers.items()}
        | {
            ("kafka", "other", "0"): PartitionCheckpoint("99"),
            ("kinesis", TOPIC, "0"): PartitionCheckpoint("99"),
        }
    )


def _hook(topic):
    hook = CommitGroupOffsets({"bootstrap.servers": "127.0.0.1:9", "group.id": "g"}, TOPIC)
    hook._consumer = topic  # the broker stand-in
    return hook


def test_group_offsets_become_the_offset_after_each_committed_frontier():
    topic = _topic(committed={0: 4})
    _hook(topic).commit(_progress(**{"0": "6", "2": "1", "1": None}))
    assert topic.commits == [[(0, 7), (2, 2)]]


def test_group_offsets_only_move_forward():
    topic = _topic(committed={0: 7, 2: 1})
    hook = _hook(topic)
    hook.commit(_progress(**{"0": "6", "2": "1"}))  # 0: 7 is already ahead; 2: 2 moves on
    assert topic.commits == [[(2, 2)]]
    hook.commit(_progress(**{"0": "6", "2": "1"}))  # nothing moves: nothing is committed
    assert topic.commits == [[(2, 2)]]


def test_nothing_committed_means_no_request():
    topic = _topic()
    topic.unreachable = True  # would raise if asked
    _hook(topic).commit(_progress(**{"0": None}))
    assert topic.commits == []


def test_an_unreachable_broker_at_commit_time_is_not_raised():
    topic = _topic()
    topic.unreachable = True
    _hook(topic).commit(_progress(**{"0": "5"}))  # logged and counted, not raised
    assert topic.commits == []


def test_a_pickled_hook_carries_its_settings_but_no_consumer():
    import pickle

    hook = _hook(_topic())
    copy = pickle.loads(pickle.dumps(hook))
    assert copy._consumer is None
    assert (copy._config, copy._topic, copy._timeout_s) == (hook._config, TOPIC, 5.0)


_KILLED_AT_COMMIT = """
from tests.unit.test_core_kafka_positions import _hook, _progress, _topic
topic = _topic(committed={0: 1})
_hook(topic).commit(_progress(**{"0": "6"}))
print("committed", topic.commits)
"""


def test_the_group_offsets_failpoint_kills_before_the_commit():
    import os
    import signal
    import subprocess
    import sys

    def run(armed):
        env = {**os.environ, "DATAPLANE_FAILPOINT": armed}
        return subprocess.run(
            [sys.executable, "-c", _KILLED_AT_COMMIT],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    # In this process (not armed) the same call commits.
    topic = _topic(committed={0: 1})
    _hook(topic).commit(_progress(**{"0": "6"}))
    assert topic.commits == [[(0, 7)]]
    killed = run("group_offsets@1")
    assert killed.returncode == -signal.SIGKILL and "committed" not in killed.stdout
    passed = run("group_offsets@2")  # the second pass is armed: the first commits
    assert passed.returncode == 0 and "committed [[(0, 7)]]" in passed.stdout


def test_a_hook_opens_its_own_consumer_and_survives_an_unreachable_broker():
    hook = CommitGroupOffsets(
        {"bootstrap.servers": "127.0.0.1:9", "group.id": "g", "socket.timeout.ms": 1000},
        TOPIC,
        timeout_s=0.5,
    )
    hook.commit(_progress(**{"0": "5"}))  # the look-up times out: logged and counted, not raised
    assert hook._consumer is not None


def test_an_unreachable_broker_at_commit_time_is_logged_without_secrets(caplog):
    topic = _topic()
    topic.unreachable = True  # its error text carries "pw=hunter2"
    hook = CommitGroupOffsets(
        {"bootstrap.servers": "127.0.0.1:9", "group.id": "g", "sasl.password": "hunter2"}, TOPIC
    )
    hook._consumer = topic
    with caplog.at_level("WARNING", logger="transforms.checkpoint.group_offsets"):
        hook.commit(_progress(**{"0": "5"}))
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith("could not commit group offsets of t: KafkaError{")
    assert "broker down" in message and "hunter2" not in message


class _HookWithTopic(beam.DoFn):
    """Runs a group-offset hook inside a pipeline (where Beam counts its metrics)."""

    def __init__(self, hook, topic):
        self._hook, self._topic = hook, topic

    def process(self, progress):
        self._hook._consumer = self._topic
        self._hook.commit(progress)
        yield self._topic.commits


def test_group_offset_commits_and_failures_are_counted():
    reachable, unreachable = _topic(committed={0: 1}), _topic()
    unreachable.unreachable = True
    config = {"bootstrap.servers": "127.0.0.1:9", "group.id": "g"}
    pipeline = beam.Pipeline()
    progress = pipeline | beam.Create([_progress(**{"0": "6"})])
    _ = progress | "Ok" >> beam.ParDo(_HookWithTopic(CommitGroupOffsets(config, TOPIC), reachable))
    _ = progress | "Down" >> beam.ParDo(
        _HookWithTopic(CommitGroupOffsets(config, TOPIC), unreachable)
    )
    result = pipeline.run()
    result.wait_until_finish()
    counted = {
        (c.key.step, c.key.metric.name): c.committed
        for c in result.metrics().query()["counters"]
        if c.key.metric.namespace == "dataplane.kafka"
    }
    assert counted == {
        ("Ok", "group_offset_commits"): 1,
        ("Down", "group_offset_commit_failures"): 1,
    }


# -- tables that record offsets the partition never had -------------------------------------


def test_a_frontier_beyond_the_partition_end_is_refused_naming_it():
    # Partition 0 ends at 10 (its last record is 9); the tables say 12 was committed.
    with pytest.raises(ConfigError) as caught:
        _plan(_topic(), resume_after={0: 12, 2: 1})
    assert str(caught.value) == (
        "topic: the output tables record offset 12 of t[0] as committed, but that partition "
        "ends at offset 10: the topic was recreated or emptied since they were written. "
        "Write to new tables (--output, --dlq), or move these away."
    )


def test_a_lagging_watermark_is_checked_against_the_true_end_only_where_needed():
    topic = _topic(reported_high={0: 7})  # the broker counts batches: 7, the end is 10
    reads = _plan(topic, resume_after={0: 8, 2: 1})
    assert topic.probes == [[(0, 6)]]  # only partition 0 looked past its watermark
    assert {r.partition: r.start_offset for r in reads if r.partition != 1} == {0: 9, 2: 2}


def test_a_frontier_at_the_last_record_needs_no_look_past_the_watermark():
    topic = _topic()
    reads = _plan(topic, resume_after={0: 9})
    assert topic.probes == [] and reads[0].start_offset == 10
