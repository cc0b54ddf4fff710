"""Planning a Kafka read: which partitions, from which offset, up to which offset.

Kept apart from the reading DoFn so that planning (one consumer, metadata and
offset look-ups) runs once per topic, and the reader only walks offset ranges.

Broker high watermarks are not trusted for the end of a partition (some
Kafka-protocol brokers report the base offset of the last batch); the end is
found by reading from the watermark to the partition-EOF event, which every
broker reports correctly.
"""

import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import apache_beam as beam
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from schemas.errors import ConfigError, SourceUnavailableError
from transforms.checkpoint.frontier import CHAIN_START
from transforms.sources.kafka_config import redact_text

__all__ = [
    "UNBOUNDED",
    "PartitionPlan",
    "PartitionRead",
    "StartPosition",
    "partition_numbers",
    "plan_partition_reads",
]

UNBOUNDED = sys.maxsize
StartPosition = Literal["earliest", "latest", "committed", "timestamp", "offsets"]


@dataclass(frozen=True)
class PartitionPlan:
    """What a read's partitions are planned from (see :func:`plan_partition_reads`).

    Attributes:
        start: where a partition without a checkpoint starts.
        start_offsets: with ``start="offsets"``, the offset per partition.
        start_timestamp_ms: with ``start="timestamp"``, the event time to start at.
        bounded: whether each partition's read stops at its end when planned.
        max_records: records to read in all (0: no limit; a limit bounds the read).
        partitions: the partitions to read (None: all).
        timeout_s: how long one metadata or offsets look-up may take.
    """

    start: StartPosition = "earliest"
    start_offsets: Mapping[int, int] = field(default_factory=dict)
    start_timestamp_ms: int | None = None
    bounded: bool = False
    max_records: int = 0
    partitions: tuple[int, ...] | None = None
    timeout_s: float = 10.0


_OFFSET_INVALID = -1001
_LOG = logging.getLogger(__name__)


class PartitionRead(NamedTuple):
    """What one restriction reads: a partition's offset range and limits."""

    topic: str
    partition: int
    start_offset: int
    stop_offset: int  # exclusive; UNBOUNDED in streaming mode
    max_records: int  # 0: no limit
    min_timestamp_ms: int  # records older than this are skipped; -1: none
    # prev_position of the record at start_offset: "start" after a configured start
    # position, the committed frontier when the read resumes from a sink's progress.
    first_prev: str = CHAIN_START


beam.coders.registry.register_coder(PartitionRead, beam.coders.RowCoder)


class _Planner:
    def __init__(self, consumer: Consumer, topic: str, timeout_s: float, config: Mapping) -> None:
        self.consumer, self.topic, self.timeout_s, self._config = consumer, topic, timeout_s, config

    def partitions(self) -> list[int]:
        try:
            metadata = self.consumer.list_topics(self.topic, timeout=self.timeout_s)
        except KafkaException as err:
            raise SourceUnavailableError(self._unreachable(err)) from None
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            reason = topic.error.str() if topic is not None and topic.error else "not found"
            raise ConfigError("topic", f"Kafka topic {self.topic!r} is not readable: {reason}")
        return sorted(topic.partitions)

    def low_offsets(self, partitions: Sequence[int]) -> dict[int, int]:
        return {p: self._watermarks(p)[0] for p in partitions}

    def high_offsets(self, partitions: Sequence[int]) -> dict[int, int]:
        return {p: self._watermarks(p)[1] for p in partitions}

    def end_offsets(self, partitions: Sequence[int]) -> dict[int, int]:
        """True end offsets, found by reading from each high watermark to partition EOF."""
        probes = [
            TopicPartition(self.topic, p, max(self._watermarks(p)[1] - 1, 0)) for p in partitions
        ]
        ends = {tp.partition: tp.offset for tp in probes}
        pending = set(partitions)
        self.consumer.assign(probes)
        deadline = time.monotonic() + self.timeout_s
        while pending and time.monotonic() < deadline:
            for message in self.consumer.consume(1000, timeout=0.2):
                part, offset, error = (
                    message.partition() or 0,
                    message.offset() or 0,
                    message.error(),
                )
                if error is None:
                    ends[part] = max(ends[part], offset + 1)
                elif error.code() == KafkaError._PARTITION_EOF:
                    ends[part] = max(ends[part], offset)
                    pending.discard(part)
        self.consumer.unassign()
        if pending:
            raise SourceUnavailableError(
                f"no end-of-partition from {self.topic} partitions {sorted(pending)} within "
                f"{self.timeout_s:.0f}s; is the broker reachable at "
                f"{self._config.get('bootstrap.servers')}?"
            )
        return ends

    def committed_offsets(self, partitions: Sequence[int]) -> dict[int, int | None]:
        tps = [TopicPartition(self.topic, p) for p in partitions]
        try:
            found = self.consumer.committed(tps, timeout=self.timeout_s)
        except KafkaException as err:
            raise SourceUnavailableError(self._unreachable(err)) from None
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in found}

    def offsets_for_time(self, partitions: Sequence[int], ts_ms: int) -> dict[int, int]:
        tps = [TopicPartition(self.topic, p, ts_ms) for p in partitions]
        try:
            found = self.consumer.offsets_for_times(tps, timeout=self.timeout_s)
        except KafkaException as err:
            raise SourceUnavailableError(self._unreachable(err)) from None
        return {tp.partition: tp.offset for tp in found}

    def _watermarks(self, partition: int) -> tuple[int, int]:
        try:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(self.topic, partition), timeout=self.timeout_s
            )
        except KafkaException as err:
            raise SourceUnavailableError(self._unreachable(err)) from None
        return max(low, 0), max(high, 0)

    def _unreachable(self, err: Exception) -> str:
        return redact_text(
            f"cannot reach Kafka at bootstrap.servers={self._config.get('bootstrap.servers')} "
            f"within {self.timeout_s:.0f}s: {err}",
            self._config,
        )


def _start_offsets(
    planner: _Planner,
    partitions: Sequence[int],
    start: StartPosition,
    *,
    start_offsets: Mapping[int, int],
    start_timestamp_ms: int | None,
    ends: Mapping[int, int],
) -> dict[int, int]:
    lows = planner.low_offsets(partitions)
    if start == "earliest":
        return lows
    if start == "latest":
        return dict(ends)
    if start == "committed":
        committed = planner.committed_offsets(partitions)
        # A group offset that retention removed starts at the log start, as "offsets" does.
        return {p: max(_or(committed[p], lows[p]), lows[p]) for p in partitions}
    if start == "timestamp":
        assert start_timestamp_ms is not None
        found = planner.offsets_for_time(partitions, start_timestamp_ms)
        # -1: no record at or after the timestamp: start at the end.
        return {p: found[p] if found[p] >= 0 else ends[p] for p in partitions}
    return {p: max(start_offsets.get(p, lows[p]), lows[p]) for p in partitions}


def _check_frontiers_exist(
    topic: str, highs: Mapping[int, int], committed: Mapping[int, int]
) -> None:
    """Raises when the tables hold offsets the partition never had: the topic is not the
    one they were written from (recreated, or a broker that kept it in memory restarted).

    Reading on would find nothing until the new topic passed the old offsets, and then
    skip its first records as already committed.

    >>> _check_frontiers_exist("t", {0: 10, 1: 5}, {0: 9, 1: 4})
    >>> _check_frontiers_exist("t", {0: 10, 1: 5}, {0: 9, 1: 7})
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: topic: the output tables record offset 7 of t[1] as \
committed, but that partition ends at offset 5: the topic was recreated or emptied since \
they were written. Write to new tables (--output, --dlq), or move these away.
    """
    behind = sorted(p for p, high in highs.items() if committed[p] + 1 > high)
    if behind:
        p = behind[0]
        raise ConfigError(
            "topic",
            f"the output tables record offset {committed[p]} of {topic}[{p}] as committed, "
            f"but that partition ends at offset {highs[p]}: the topic was recreated or emptied "
            "since they were written. Write to new tables (--output, --dlq), or move these away.",
        )


def _resume_offset(topic: str, partition: int, committed: int, low: int) -> int:
    """The offset after a committed frontier; the log start when retention removed it."""
    if committed + 1 >= low:
        return committed + 1
    _LOG.warning(
        "%s[%d]: offsets %d..%d were removed by retention before they were read; resuming at %d",
        topic,
        partition,
        committed + 1,
        low - 1,
        low,
    )
    return low


def _or(value: int | None, fallback: int) -> int:
    return value if value is not None else fallback


def _split_limit(limit: int, available: Mapping[int, int]) -> dict[int, int]:
    """Shares ``limit`` records across partitions as evenly as their backlogs allow.

    >>> _split_limit(10, {0: 100, 1: 2, 2: 100})
    {0: 4, 1: 2, 2: 4}
    """
    quota = dict.fromkeys(available, 0)
    left = limit
    while left > 0:
        open_parts = [p for p in sorted(available) if quota[p] < available[p]]
        if not open_parts:
            break
        share = max(left // len(open_parts), 1)
        for p in open_parts:
            take = min(share, available[p] - quota[p], left)
            quota[p] += take
            left -= take
    return quota


def partition_numbers(
    consumer: Consumer, topic: str, *, config: Mapping[str, Any], timeout_s: float
) -> list[int]:
    """The partitions ``topic`` has now, in order (one metadata request)."""
    return _Planner(consumer, topic, timeout_s, config).partitions()


def plan_partition_reads(
    consumer: Consumer,
    topic: str,
    plan: PartitionPlan,
    *,
    config: Mapping[str, Any],
    resume_after: Mapping[int, int] | None = None,
) -> list[PartitionRead]:
    """One PartitionRead per partition of ``topic`` (or of ``plan.partitions``).

    With ``plan.max_records`` the read is bounded and the limit is shared across
    partitions as evenly as their backlogs allow. ``resume_after`` maps partitions
    to the last offset a sink has fully committed: those partitions start right
    after it, whatever ``plan.start`` says.
    """
    start, start_offsets = plan.start, plan.start_offsets
    start_timestamp_ms, max_records = plan.start_timestamp_ms, plan.max_records
    partitions, timeout_s = plan.partitions, plan.timeout_s
    bounded = plan.bounded or max_records > 0
    planner = _Planner(consumer, topic, timeout_s, config)
    existing = planner.partitions()
    chosen = existing if partitions is None else [p for p in partitions if p in existing]
    if partitions is not None and len(chosen) != len(set(partitions)):
        missing = sorted(set(partitions) - set(existing))
        raise ConfigError("partitions", f"topic {topic!r} has no partitions {missing}")
    needs_end = bounded or max_records > 0 or start in ("latest", "timestamp")
    ends = planner.end_offsets(chosen) if needs_end else {}
    starts = _start_offsets(
        planner,
        chosen,
        start,
        start_offsets=start_offsets,
        start_timestamp_ms=start_timestamp_ms,
        ends=ends,
    )
    first_prev = dict.fromkeys(chosen, CHAIN_START)
    if resume_after:
        resumed = [p for p in chosen if p in resume_after]
        highs = planner.high_offsets(resumed)
        # A high watermark can lag the true end (Tansu counts batches): look closer.
        beyond = [p for p in resumed if resume_after[p] + 1 > highs[p]]
        _check_frontiers_exist(topic, planner.end_offsets(beyond) if beyond else {}, resume_after)
        lows = planner.low_offsets(resumed)
        for p, low in lows.items():
            starts[p], first_prev[p] = (
                _resume_offset(topic, p, resume_after[p], low),
                str(resume_after[p]),
            )
    stops = {p: max(ends[p], starts[p]) if bounded else UNBOUNDED for p in chosen}
    min_ts = start_timestamp_ms if start == "timestamp" and start_timestamp_ms is not None else -1
    if not max_records:
        return [
            PartitionRead(topic, p, starts[p], stops[p], 0, min_ts, first_prev[p]) for p in chosen
        ]
    quotas = _split_limit(max_records, {p: stops[p] - starts[p] for p in chosen})
    return [
        # A partition with no share of the limit gets an empty range.
        PartitionRead(
            topic,
            p,
            starts[p],
            stops[p] if quotas[p] else starts[p],
            quotas[p],
            min_ts,
            first_prev[p],
        )
        for p in chosen
    ]
