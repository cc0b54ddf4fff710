"""ReadFromKafka: a pure-Python splittable DoFn over confluent-kafka.

Runs on every portable runner (no Java expansion service): one restriction per
partition (an offset range), one claim per offset, a self-checkpoint when the
partition is caught up, and a watermark fed by record timestamps that moves on
with wall-clock time when a partition stays idle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import GlobalWindow, TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from schemas.errors import ConfigError, SourceUnavailableError
from transforms.batches import Batch
from transforms.checkpoint.group_offsets import CommitGroupOffsets
from transforms.checkpoint.log import ResumeFrom
from transforms.progress import note, set_gauge
from transforms.record import Record, make_record
from transforms.sources.kafka_config import consumer_config, redact, redact_text
from transforms.sources.kafka_headers import headers_of
from transforms.sources.kafka_partitions import (
    UNBOUNDED,
    PartitionPlan,
    PartitionRead,
    StartPosition,
    partition_numbers,
    plan_partition_reads,
)
from transforms.sources.splittable import MANUAL_WATERMARK, unbounded
from transforms.sources.watermark import advance_watermark
from transforms.stop import stop_requested

__all__ = ["ReadFromKafka"]

_LOG = logging.getLogger(__name__)
_START_POSITIONS = ("earliest", "latest", "committed", "timestamp", "offsets")
_CONSUME_BATCH = 1000
# consume() hands over a list of messages at once; its length is cut so that it
# holds about this many bytes of the sizes seen lately (large records: few at once),
# starting from a few messages while sizes are not known yet.
_CONSUME_BYTES = 8 << 20
_FIRST_BATCH = 16
# consume() waits this long unless a whole batch is there: short, so that reaching
# the end of a partition (its EOF event) ends a call quickly.
_CONSUME_WAIT_S = 0.02
# A caught-up streaming read is called again after this long.
_IDLE_RESUME_S = 0.2
# The partition watch's watermark: below the end of the global window, where the
# planned reads wait in a Reshuffle, above any record's event time.
_NO_HOLD = GlobalWindow().max_timestamp() - Duration(seconds=86_400)
# A partition watch waiting for its next look comes back this often to see a stop.
_STOP_CHECK_S = 1.0


@dataclass
class _Reached:
    """How far one reader call got: the next offset to read and the end, once seen."""

    next_offset: int
    end: int | None = None


class _PartitionTracker(OffsetRestrictionTracker):
    """An offset tracker that knows an UNBOUNDED stop means a streaming read."""

    def is_bounded(self) -> bool:
        return self.current_restriction().stop != UNBOUNDED

    def try_split(self, fraction_of_remainder: float) -> Any:
        # Checkpoints only: a residual then starts right after the last claimed
        # record, which is what the first record's prev_position link relies on.
        # (A partition is the unit of parallelism; splitting one buys little.)
        if fraction_of_remainder > 0:
            return None
        return super().try_split(fraction_of_remainder)


class _PartitionRestrictions(RestrictionProvider):
    def initial_restriction(self, element: PartitionRead) -> OffsetRange:
        return OffsetRange(element.start_offset, element.stop_offset)

    def create_tracker(self, restriction: OffsetRange) -> _PartitionTracker:
        return _PartitionTracker(restriction)

    def restriction_size(self, element: PartitionRead, restriction: OffsetRange) -> int:
        if restriction.stop == UNBOUNDED:
            return 1 << 20  # unknown backlog: a fixed, large-but-sane weight
        return max(restriction.stop - restriction.start, 0)

    def truncate(self, element: PartitionRead, restriction: OffsetRange) -> OffsetRange | None:
        # On drain, a streaming read stops; a bounded one finishes its range.
        return None if restriction.stop == UNBOUNDED else restriction


class _PlanDoFn(beam.DoFn):
    """Turns a topic name into one PartitionRead per partition (one consumer, at start)."""

    def __init__(
        self, config: dict[str, Any], plan: PartitionPlan, resume_from: ResumeFrom | None
    ) -> None:
        self._config, self._plan, self._resume_from = config, plan, resume_from

    def process(self, topic: str) -> Iterator[PartitionRead]:
        resume_after = {}
        if self._resume_from is not None:
            found = self._resume_from.frontiers("kafka", topic)
            resume_after = {int(p): int(position) for p, position in found.items()}
            _LOG.info("%s: resuming after the committed offsets %s", topic, resume_after)
        consumer = _open_consumer(self._config)
        try:
            yield from plan_partition_reads(
                consumer, topic, self._plan, config=self._config, resume_after=resume_after
            )
        finally:
            consumer.close()


class _PartitionNumbers(RestrictionProvider):
    """A watch's restriction: the partition numbers it has yet to plan, from 0 on.

    Kafka numbers a topic's partitions 0..N-1 and only ever adds to them, so one
    claim per partition number, in order, plans each partition exactly once.
    """

    def initial_restriction(self, element: str) -> OffsetRange:
        return OffsetRange(0, UNBOUNDED)

    def create_tracker(self, restriction: OffsetRange) -> _PartitionTracker:
        return _PartitionTracker(restriction)

    def restriction_size(self, element: str, restriction: OffsetRange) -> int:
        return 1

    def truncate(self, element: str, restriction: OffsetRange) -> OffsetRange | None:
        return None  # on drain, stop watching


class _WatchPartitionsDoFn(_PlanDoFn):
    """Plans a streaming read's partitions, then those added to the topic later.

    The first call plans every partition there is (``start``, or the tables'
    progress). Every ``discovery_s`` after that it looks at the topic's metadata
    again and plans each new partition from its start, so its records are read and
    exactly-once like the others. It hands out work, not records, so its watermark
    holds nothing back (as a planning step that has ended would not): the readers'
    watermarks alone follow the records' event time. (The clock would do for
    records stamped in the past, but would stall windows of records stamped ahead.)
    """

    def __init__(
        self,
        config: dict[str, Any],
        plan: PartitionPlan,
        resume_from: ResumeFrom | None,
        discovery_s: float,
    ) -> None:
        super().__init__(config, plan, resume_from)
        self._discovery_s = discovery_s
        self._next_look: dict[str, float] = {}

    def setup(self) -> None:
        self._next_look = {}

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        topic: str,
        tracker: Any = beam.DoFn.RestrictionParam(_PartitionNumbers()),
        watermark: Any = MANUAL_WATERMARK,
    ) -> Iterator[PartitionRead]:
        if stop_requested():
            tracker.try_claim(UNBOUNDED)
            return
        first = tracker.current_restriction().start
        pause = Duration(seconds=min(self._discovery_s, _STOP_CHECK_S))
        if first > 0 and time.monotonic() < self._next_look.get(topic, 0.0):
            advance_watermark(watermark, _NO_HOLD)
            tracker.defer_remainder(pause)  # back soon, to see a stop; the next look is later
            return
        self._next_look[topic] = time.monotonic() + self._discovery_s
        try:
            reads = self._plan_from(topic, first)
        except (SourceUnavailableError, KafkaException) as err:
            if first == 0:
                raise  # at the start a broker that is not there is an error
            _LOG.warning("%s: looking for new partitions failed (%s); trying again", topic, err)
            reads = []
        for read in sorted(reads, key=lambda r: r.partition):
            if not tracker.try_claim(read.partition):
                return
            if first > 0:
                _LOG.info("%s: partition %d is new; reading it from offset %d", topic, *read[1:3])
            yield read
        advance_watermark(watermark, _NO_HOLD)
        tracker.defer_remainder(pause)

    def _plan_from(self, topic: str, first: int) -> list[PartitionRead]:
        """Reads for the partitions numbered ``first`` and up (all of them when 0)."""
        if first == 0:
            return list(super().process(topic))
        consumer = _open_consumer(self._config)
        try:
            existing = partition_numbers(
                consumer, topic, config=self._config, timeout_s=self._plan.timeout_s
            )
            new = [p for p in existing if p >= first]
            if not new:
                return []
            found = self._resume_from.frontiers("kafka", topic) if self._resume_from else {}
            resume_after = {int(p): int(pos) for p, pos in found.items() if int(p) in new}
            plan = replace(self._plan, start="earliest", start_offsets={}, partitions=tuple(new))
            return plan_partition_reads(
                consumer, topic, plan, config=self._config, resume_after=resume_after
            )
        finally:
            consumer.close()


def _open_consumer(config: Mapping[str, Any]) -> Consumer:
    try:
        return Consumer(dict(config))
    except KafkaException as err:
        raise ConfigError("consumer_config", redact_text(str(err), config)) from None


@dataclass(frozen=True)
class _ReaderSettings:
    """How a partition reader polls and when it gives up or holds the watermark back."""

    idle_timeout_s: float
    max_out_of_orderness_s: float
    stall_timeout_s: float
    max_poll_s: float = 1.0


class _ReadPartitionDoFn(beam.DoFn):
    """Reads one partition's offset range; a bounded read finishes at its stop or at EOF."""

    def __init__(
        self, config: dict[str, Any], settings: _ReaderSettings, batched: bool = False
    ) -> None:
        self._config = config
        self._batched = batched
        self._max_poll_s = settings.max_poll_s
        self._idle_s = settings.idle_timeout_s
        self._lag_ms = int(settings.max_out_of_orderness_s * 1000)
        self._stall_s = settings.stall_timeout_s
        self._consumer: Consumer | None = None
        self._batch = _FIRST_BATCH
        self._last_data: dict[tuple[str, int], float] = {}
        self._read = Metrics.counter("dataplane.kafka", "records_read")
        self._skipped = Metrics.counter("dataplane.kafka", "records_before_start_timestamp")

    def setup(self) -> None:
        self._consumer = _open_consumer(self._config)

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def process(
        self,
        element: PartitionRead,
        tracker: Any = beam.DoFn.RestrictionParam(_PartitionRestrictions()),
        watermark: Any = MANUAL_WATERMARK,
    ) -> Iterator[TimestampedValue]:
        read: list[tuple[Record, int]] = []
        for item in self._read_range(element, tracker, watermark):
            if item is _FLUSH:
                yield from self._emit(element, read)
                read.clear()
            else:
                read.append(item)
        yield from self._emit(element, read)

    def _emit(
        self, element: PartitionRead, read: list[tuple[Record, int]]
    ) -> Iterator[TimestampedValue]:
        """The records read, as they go out: each alone, or all of them as one Batch."""
        if not read:
            return
        self._read.inc(len(read))
        note(
            "records_read",
            len(read),
            source="kafka",
            stream=element.topic,
            partition=str(element.partition),
        )
        if self._batched:
            oldest = min(ts_ms for _record, ts_ms in read)
            yield TimestampedValue(Batch(r for r, _ts in read), Timestamp(micros=oldest * 1000))
            return
        for record, ts_ms in read:
            yield TimestampedValue(record, Timestamp(micros=ts_ms * 1000))

    def _read_range(
        self,
        element: PartitionRead,
        tracker: Any,
        watermark: ManualWatermarkEstimator,
    ) -> Iterator[Any]:
        """``(record, event time ms)`` pairs as claimed, and ``_FLUSH`` after each fetch."""
        span = tracker.current_restriction()
        if span.start >= span.stop:
            return
        assert self._consumer is not None
        self._consumer.assign([TopicPartition(element.topic, element.partition, span.start)])
        emitted, deadline = 0, time.monotonic() + self._max_poll_s
        where = (element.topic, element.partition)
        # Idleness spans calls: a caught-up streaming read ends its call at once.
        last_data = self._last_data.setdefault(where, time.monotonic())
        if element.stop_offset != UNBOUNDED:
            last_data = time.monotonic()
        reached = _Reached(next_offset=span.start)
        # The chain link of the first record: a residual's start follows the last
        # record claimed before the split (splits are checkpoints only, see tracker).
        prev = element.first_prev if span.start == element.start_offset else str(span.start - 1)
        newest = _Newest()
        try:
            while True:
                if stop_requested():  # ends the read: see transforms.stop
                    tracker.try_claim(tracker.current_restriction().stop)
                    return
                messages = self._consumer.consume(self._batch, timeout=_CONSUME_WAIT_S)
                self._batch = _next_batch(messages, self._batch)
                caught_up = False
                for message in messages:
                    if _is_eof(message):
                        caught_up, reached.end = True, message.offset()
                        continue
                    if not tracker.try_claim(message.offset()):
                        return
                    caught_up, last_data = False, time.monotonic()
                    self._last_data[where] = last_data
                    reached.next_offset = int(message.offset() or 0) + 1
                    value = self._to_record(element, message, prev)
                    if value is not None:
                        emitted, prev = emitted + 1, str(message.offset())
                        newest.ms = max(newest.ms, value[1])
                        yield value
                    if element.max_records and emitted >= element.max_records:
                        tracker.try_claim(span.stop)
                        return
                newest.advance(watermark, self._lag_ms)
                yield _FLUSH
                idle = caught_up or not messages
                if idle and self._finish_if_idle(element, tracker, watermark, caught_up, last_data):
                    return
                if element.stop_offset == UNBOUNDED and self._checkpoint(tracker, deadline):
                    return
        finally:
            newest.advance(watermark, self._lag_ms)
            self._report_lag(element, reached)
            _report_watermark(element, watermark)
            self._consumer.unassign()

    def _report_lag(self, element: PartitionRead, reached: _Reached) -> None:
        """Sets the partition's lag gauge: records between the last one read and the end."""
        assert self._consumer is not None
        end = reached.end
        if end is None:
            tp = TopicPartition(element.topic, element.partition)
            marks = self._consumer.get_watermark_offsets(tp, cached=True)
            if not marks or marks[1] < 0:  # no fetch response has told the high mark yet
                return
            end = int(marks[1])
        gauge = Metrics.gauge("dataplane.kafka", f"lag_records.{element.topic}.{element.partition}")
        lag = max(int(end) - reached.next_offset, 0)
        gauge.set(lag)
        set_gauge(f"lag_records kafka {element.topic}[{element.partition}]", lag)

    def _finish_if_idle(
        self,
        element: PartitionRead,
        tracker: Any,
        watermark: ManualWatermarkEstimator,
        caught_up: bool,
        last_data: float,
    ) -> bool:
        """Whether this call should end now that there is nothing to read; raises on a stall.

        A caught-up streaming read defers the rest of its partition and is called
        again shortly (each call then holds the runner only briefly), moving its
        watermark on with the clock once idle for ``idle_timeout_s``.
        """
        span = tracker.current_restriction()
        if caught_up and span.stop != UNBOUNDED:
            # Bounded, or a streaming read the runner has split: nothing more up to the end.
            tracker.try_claim(span.stop)
            return True
        if caught_up:
            if time.monotonic() - last_data >= self._idle_s:
                advance_watermark(watermark, Timestamp.now() - Duration(micros=self._lag_ms * 1000))
            tracker.defer_remainder(Duration(seconds=_IDLE_RESUME_S))
            return True
        if element.stop_offset != UNBOUNDED and time.monotonic() - last_data >= self._stall_s:
            raise SourceUnavailableError(
                redact_text(
                    f"no data and no end-of-partition from {element.topic}[{element.partition}] "
                    f"for {self._stall_s:.0f}s (stall_timeout_s); is the broker at "
                    f"{self._config['bootstrap.servers']} up?",
                    self._config,
                )
            )
        return False

    def _to_record(
        self, element: PartitionRead, message: Message, prev: str
    ) -> tuple[Record, int] | None:
        """The message's Record and event time (ms); None for one before the start time."""
        error = message.error()
        if error is not None:
            raise KafkaException(error)
        kind, ts_ms = message.timestamp()
        if kind == 0 or ts_ms < 0:  # TIMESTAMP_NOT_AVAILABLE
            ts_ms = int(time.time() * 1000)
        if 0 <= ts_ms < element.min_timestamp_ms:
            self._skipped.inc()
            return None
        record: Record = make_record(
            source="kafka",
            stream=element.topic,
            partition=element.partition,
            position=int(message.offset() or 0),
            key=message.key(),
            value=message.value(),
            headers=headers_of(message),
            event_time_ms=ts_ms,
            prev_position=prev,
        )
        return record, ts_ms

    def _checkpoint(self, tracker: Any, deadline: float) -> bool:
        """Ends a streaming call: split from outside by the runner, or out of time."""
        if tracker.current_restriction().stop != UNBOUNDED:
            tracker.try_claim(tracker.current_restriction().stop)
            return True
        if time.monotonic() >= deadline:
            tracker.defer_remainder(Duration(seconds=0.1))
            return True
        return False


class _ReadPartitionUnboundedDoFn(_ReadPartitionDoFn):
    """The streaming flavour: the runner treats each partition's output as unbounded."""

    process = unbounded(_ReadPartitionDoFn.process)


# Yielded by a partition read after each fetch: the records read so far go out.
_FLUSH = object()


class _Newest:
    """The newest event time read since the watermark last moved (ms; -1: none)."""

    __slots__ = ("ms",)

    def __init__(self) -> None:
        self.ms = -1

    def advance(self, watermark: ManualWatermarkEstimator, lag_ms: int) -> None:
        """Moves the watermark to the newest time less ``lag_ms`` (it only moves forward)."""
        if self.ms >= 0:
            advance_watermark(watermark, Timestamp(micros=(self.ms - lag_ms) * 1000))
            self.ms = -1


def _next_batch(messages: list[Message], batch: int) -> int:
    """How many messages the next consume() takes: about ``_CONSUME_BYTES`` of them.

    >>> class M:
    ...     def __init__(self, n): self.n = n
    ...     def __len__(self): return self.n
    >>> _next_batch([M(4 << 20)] * 3, 1000), _next_batch([M(100)] * 3, 1)
    (2, 1000)
    """
    if not messages:
        return batch
    size = sum(len(m) for m in messages) / len(messages)
    return max(1, min(_CONSUME_BATCH, int(_CONSUME_BYTES / max(size, 1.0))))


def _report_watermark(element: PartitionRead, watermark: ManualWatermarkEstimator) -> None:
    current = watermark.current_watermark()
    if current is not None:
        name = f"watermark_ms kafka {element.topic}[{element.partition}]"
        set_gauge(name, current.micros // 1000)


def _is_eof(message: Message) -> bool:
    error = message.error()
    return error is not None and error.code() == KafkaError._PARTITION_EOF


class ReadFromKafka(beam.PTransform):
    """Reads a Kafka topic as :class:`~transforms.record.Record` elements.

    Pure Python (confluent-kafka), so it runs on DirectRunner, Flink and Dataflow
    alike. Each partition is one restriction; records carry their topic, partition
    and offset, and a ``record_id`` derived from them.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``; or ``bootstrap.servers`` in
            ``consumer_config``, as Beam's ``ReadFromKafka`` takes it.
        topic: the topic to read.
        topics: Beam's spelling: a list of exactly one topic (a read covers one topic;
            apply one per topic and ``beam.Flatten`` them).
        start: where each partition starts: ``"earliest"``, ``"latest"``,
            ``"committed"`` (the consumer group's offsets, else earliest),
            ``"timestamp"`` (needs ``start_timestamp_ms``; records older than it are
            skipped even where the broker's time index is coarse) or ``"offsets"``
            (``start_offsets``; unlisted partitions start at earliest).
        start_offsets: partition -> first offset, with ``start="offsets"``.
        start_timestamp_ms: epoch milliseconds, with ``start="timestamp"``.
        bounded: stop at each partition's end as of the start of the read.
        max_records: stop after this many records in all (implies ``bounded``).
        partitions: read only these partitions.
        consumer_config: any librdkafka setting (SASL/SSL included). Secret values
            never appear in display data or error messages.
        idle_timeout_s: after this long caught up with no data, a partition's
            watermark follows wall-clock time, so an idle partition does not hold
            windows back.
        max_out_of_orderness_s: how far behind the newest timestamp the watermark trails.
        stall_timeout_s: a bounded read with no data and no end-of-partition for this
            long fails with :class:`~schemas.errors.SourceUnavailableError`.
        metadata_timeout_s: how long planning waits for the broker before failing.
        resume_from: the pipeline's Delta tables: partitions they hold progress for
            start right after their committed frontier, the others at ``start``.
        partition_discovery_s: a streaming read over the whole topic looks for
            partitions added to it this often and reads each new one from its
            start; 0 turns that off (the partitions of the start are read).
        batched: emit the records of each fetch from a partition as one
            :class:`~transforms.batches.Batch` (in offset order, stamped with
            their earliest event time) instead of one element per record; the
            row-wise transforms and sinks of this library take either.

    Raises:
        ConfigError: a parameter is out of range, names an unknown mode, or
            contradicts another.

    Example:
        >>> read = ReadFromKafka(bootstrap_servers="127.0.0.1:9092", topic="tweets",
        ...                      bounded=True,
        ...                      consumer_config={"sasl.password": "hunter2"})
        >>> read.display_data()["consumer_config"]
        "{'sasl.password': '***'}"
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str | None = None,
        topic: str | None = None,
        topics: Sequence[str] | None = None,
        start: StartPosition = "earliest",
        start_offsets: Mapping[int, int] | None = None,
        start_timestamp_ms: int | None = None,
        bounded: bool = False,
        max_records: int = 0,
        partitions: Sequence[int] | None = None,
        consumer_config: Mapping[str, Any] | None = None,
        idle_timeout_s: float = 5.0,
        max_out_of_orderness_s: float = 0.0,
        stall_timeout_s: float = 60.0,
        metadata_timeout_s: float = 30.0,
        resume_from: ResumeFrom | None = None,
        partition_discovery_s: float = 30.0,
        batched: bool = False,
    ) -> None:
        super().__init__()
        self._batched = batched
        _check_start(start, start_offsets, start_timestamp_ms)
        topic = _one_topic(topic, topics)
        bootstrap_servers = _bootstrap_servers(bootstrap_servers, consumer_config)
        _check_at_least(
            0,
            max_records=max_records,
            max_out_of_orderness_s=max_out_of_orderness_s,
            partition_discovery_s=partition_discovery_s,
        )
        _check_at_least(
            0.001,
            idle_timeout_s=idle_timeout_s,
            stall_timeout_s=stall_timeout_s,
            metadata_timeout_s=metadata_timeout_s,
        )
        self._topic = topic
        self._user_config = dict(consumer_config or {})
        self._config = consumer_config_for(bootstrap_servers, self._user_config)
        self._bounded = bounded or max_records > 0
        self._plan = PartitionPlan(
            start=start,
            start_offsets=dict(start_offsets or {}),
            start_timestamp_ms=start_timestamp_ms,
            bounded=self._bounded,
            max_records=max_records,
            partitions=tuple(partitions) if partitions is not None else None,
            timeout_s=metadata_timeout_s,
        )
        self._resume_from = resume_from
        self._discovery_s = partition_discovery_s
        self._settings = _ReaderSettings(
            idle_timeout_s=idle_timeout_s,
            max_out_of_orderness_s=max_out_of_orderness_s,
            stall_timeout_s=stall_timeout_s,
        )

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        reader_cls = _ReadPartitionDoFn if self._bounded else _ReadPartitionUnboundedDoFn
        watch = not self._bounded and self._discovery_s > 0 and self._plan.partitions is None
        plan = (
            _WatchPartitionsDoFn(self._config, self._plan, self._resume_from, self._discovery_s)
            if watch
            else _PlanDoFn(self._config, self._plan, self._resume_from)
        )
        return (
            pbegin
            | "Topic" >> beam.Create([self._topic])
            | "PlanPartitions" >> beam.ParDo(plan)
            | "Distribute" >> beam.Reshuffle()
            | "ReadPartitions"
            >> beam.ParDo(
                reader_cls(self._config, self._settings, self._batched)
            ).with_output_types(Batch if self._batched else Record)
        )

    def display_data(self) -> dict[str, Any]:
        return {
            "topic": self._topic,
            "bootstrap_servers": self._config["bootstrap.servers"],
            "start": self._plan.start,
            "bounded": self._bounded,
            "max_records": self._plan.max_records,
            "batched": self._batched,
            "consumer_config": str(redact(self._user_config)),
            "resume_from": ", ".join(t.uri for t in self._resume_from.tables)
            if self._resume_from
            else "(off)",
        }

    def group_offsets(self) -> CommitGroupOffsets:
        """This read's consumer-group offsets, for a sink's ``group_offsets`` option."""
        return CommitGroupOffsets(self._config, self._topic)


def consumer_config_for(bootstrap_servers: str, user_config: Mapping[str, Any]) -> dict[str, Any]:
    """The reader's consumer config, checked once at construction time."""
    config = consumer_config(bootstrap_servers, user_config)
    for key, value in config.items():
        if not isinstance(value, (str, int, float, bool)):
            raise ConfigError(
                f"consumer_config[{key!r}]",
                f"expected a string, number or boolean, got {type(value).__name__}",
            )
    return config


def _one_topic(topic: str | None, topics: Sequence[str] | None) -> str:
    """The topic named by ``topic`` or by Beam's ``topics=[...]`` (one topic per read)."""
    if topics is None:
        if not topic:
            raise ConfigError("topic", "expected a topic name, got nothing")
        return topic
    if topic:
        raise ConfigError("topics", f"give topic or topics, not both (topic={topic!r})")
    if isinstance(topics, str):
        raise ConfigError("topics", f"expected a list of topic names, got the string {topics!r}")
    names = list(topics)
    if len(names) != 1 or not names[0]:
        raise ConfigError(
            "topics",
            f"a read covers exactly one topic, got {names}: apply one ReadFromKafka per "
            "topic and beam.Flatten() their records",
        )
    return str(names[0])


def _bootstrap_servers(given: str | None, consumer_config: Mapping[str, Any] | None) -> str:
    """``bootstrap_servers``, or ``consumer_config["bootstrap.servers"]`` (Beam's spelling)."""
    in_config = (consumer_config or {}).get("bootstrap.servers")
    if given and in_config and str(in_config) != given:
        raise ConfigError(
            "consumer_config['bootstrap.servers']",
            f"{in_config!r} contradicts bootstrap_servers={given!r}; give one of them",
        )
    return given or str(in_config or "")


def _check_start(
    start: str, start_offsets: Mapping[int, int] | None, start_timestamp_ms: int | None
) -> None:
    if start not in _START_POSITIONS:
        raise ConfigError("start", f"expected one of {list(_START_POSITIONS)}, got {start!r}")
    if start == "timestamp" and start_timestamp_ms is None:
        raise ConfigError("start_timestamp_ms", 'required with start="timestamp"')
    if start == "offsets" and not start_offsets:
        raise ConfigError("start_offsets", 'required (partition -> offset) with start="offsets"')
    if start_offsets and any(o < 0 for o in start_offsets.values()):
        raise ConfigError("start_offsets", "offsets must be >= 0")


def _check_at_least(minimum: float, **values: float) -> None:
    for name, value in values.items():
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum}, got {value}")
