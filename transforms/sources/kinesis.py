"""ReadFromKinesis: a pure-Python (boto3) splittable DoFn over a Kinesis data stream.

Beam's own Python Kinesis read is a Java cross-language transform that runs only on
portable Flink/Spark; this one runs wherever Python does. One reader call works
through a set of shards: parents are finished before their children are read, a
shard that ends (split or merged) hands over to its children, GetRecords is paced
within the per-shard call limit, throttling backs off, expired iterators are
renewed from the last sequence number handed on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Duration, Timestamp

from schemas.errors import ConfigError, SourceUnavailableError
from transforms.checkpoint.frontier import CHAIN_START
from transforms.checkpoint.log import ResumeFrom
from transforms.progress import note, set_gauge
from transforms.record import make_record
from transforms.sources.kinesis_shards import (
    ITERATOR_TYPES,
    ShardRestriction,
    ShardSetTracker,
    ShardState,
    components,
    ready_shards,
    split_limit,
)
from transforms.sources.splittable import MANUAL_WATERMARK, unbounded
from transforms.sources.watermark import advance_watermark
from transforms.stop import stop_requested

__all__ = ["ReadFromKinesis", "kinesis_client"]

_LOG = logging.getLogger(__name__)
_MIN_CALL_INTERVAL_S = 0.2  # Kinesis allows 5 GetRecords calls per second per shard
_MAX_BACKOFF_S = 5.0
_GET_LIMIT = 1000


def kinesis_client(region_name: str | None, endpoint_url: str | None) -> Any:
    """A boto3 Kinesis client; credentials come from the standard AWS chain.

    Throttling is retried by botocore first (standard mode), then by the reader.
    """
    import boto3
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=10)
    session = boto3.session.Session()
    return session.client(
        "kinesis", region_name=region_name, endpoint_url=endpoint_url, config=config
    )


def _error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class _ShardRestrictions(RestrictionProvider):
    def initial_restriction(self, element: ShardRestriction) -> ShardRestriction:
        return element

    def split(self, element: ShardRestriction, restriction: ShardRestriction) -> Any:
        if not restriction.bounded:
            yield restriction  # one reader per stream: lineage across all shards is kept
            return
        groups = components(restriction.shards.values())
        for group, limit in zip(
            groups, split_limit(restriction.max_records, len(groups)), strict=True
        ):
            yield ShardRestriction(
                {s.shard_id: s for s in group},
                bounded=True,
                stop_arrival_ms=restriction.stop_arrival_ms,
                max_records=limit,
            )

    def create_tracker(self, restriction: ShardRestriction) -> ShardSetTracker:
        return ShardSetTracker(restriction)

    def restriction_size(self, element: ShardRestriction, restriction: ShardRestriction) -> int:
        return max(1, sum(not s.done for s in restriction.shards.values()))

    def truncate(self, element: ShardRestriction, restriction: ShardRestriction) -> Any:
        return restriction if restriction.bounded else None


class _PlanDoFn(beam.DoFn):
    """Lists the stream's shards once, at the start, into one restriction."""

    def __init__(
        self,
        client_args: dict[str, Any],
        plan: dict[str, Any],
        resume_from: ResumeFrom | None = None,
    ) -> None:
        self._client_args, self._plan, self._resume_from = client_args, plan, resume_from

    def process(self, stream: str) -> Iterator[ShardRestriction]:
        resumed = self._resume_from.frontiers("kinesis", stream) if self._resume_from else {}
        if resumed:
            _LOG.info(
                "%s: resuming %d shards after their committed sequences", stream, len(resumed)
            )
        client = kinesis_client(**self._client_args)
        started_ms = int(time.time() * 1000)
        shards = _list_shards(client, stream)
        known = {s["ShardId"] for s in shards}
        states = {}
        for shard in shards:
            parents = tuple(
                p
                for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId"))
                if p and p in known
            )
            start_type, start_value = self._start(shard["ShardId"], started_ms)
            states[shard["ShardId"]] = ShardState(
                shard["ShardId"],
                parents,
                start_type,
                start_value,
                last_sequence=resumed.get(shard["ShardId"]),
            )
        yield ShardRestriction(
            states,
            bounded=self._plan["bounded"],
            stop_arrival_ms=started_ms if self._plan["bounded"] else None,
            max_records=self._plan["max_records"],
        )

    def _start(self, shard_id: str, started_ms: int) -> tuple[str, str | None]:
        kind = self._plan["iterator_type"]
        if kind == "LATEST":
            # LATEST is re-evaluated on every resume and would skip what arrived in
            # between; the same position, pinned: records arriving from now on.
            return "AT_TIMESTAMP", str(started_ms)
        if kind == "AT_TIMESTAMP":
            return kind, str(self._plan["start_timestamp_ms"])
        if kind == "AFTER_SEQUENCE_NUMBER":
            sequence = self._plan["start_sequences"].get(shard_id)
            return ("AFTER_SEQUENCE_NUMBER", sequence) if sequence else ("TRIM_HORIZON", None)
        return "TRIM_HORIZON", None


def _list_shards(client: Any, stream: str) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"StreamName": stream}
    try:
        while True:
            answer = client.list_shards(**kwargs)
            shards.extend(answer["Shards"])
            token = answer.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}
    except Exception as err:
        raise SourceUnavailableError(
            f"cannot list the shards of Kinesis stream {stream!r}: {err}"
        ) from None


class _ReadShardsDoFn(beam.DoFn):
    """Reads a set of shards, parents first, paced and with backoff."""

    def __init__(self, stream: str, client_args: dict[str, Any], settings: dict[str, float]):
        self._stream = stream
        self._client_args = client_args
        self._settings = settings
        self._client: Any = None
        self._iterators: dict[tuple[str, str | None], str] = {}
        self._read = Metrics.counter("dataplane.kinesis", "records_read")
        self._throttled = Metrics.counter("dataplane.kinesis", "throttled_calls")
        self._renewed = Metrics.counter("dataplane.kinesis", "expired_iterators_renewed")

    def setup(self) -> None:
        self._client = kinesis_client(**self._client_args)

    def process(
        self,
        element: ShardRestriction,
        tracker: Any = beam.DoFn.RestrictionParam(_ShardRestrictions()),
        watermark: Any = MANUAL_WATERMARK,
    ) -> Iterator[TimestampedValue]:
        try:
            yield from self._read_shards(tracker, watermark)
        finally:
            _report_watermark(self._stream, watermark)

    def _read_shards(self, tracker: Any, watermark: Any) -> Iterator[TimestampedValue]:
        deadline = time.monotonic() + self._settings["max_poll_s"]
        next_call: dict[str, float] = {}
        backoff: dict[str, float] = {}
        caught_up_since: dict[str, float] = {}
        while True:
            restriction: ShardRestriction = tracker.current_restriction()
            if restriction.finished():
                return
            if stop_requested():  # ends the read: see transforms.stop
                for shard_id in [s.shard_id for s in restriction.shards.values() if not s.done]:
                    tracker.try_claim(("end", shard_id, {}))
                return
            ready = ready_shards(restriction)
            now = time.monotonic()
            due = [s for s in ready if next_call.get(s.shard_id, 0.0) <= now]
            for state in due:
                if state.shard_id not in tracker.current_restriction().shards:
                    return  # a checkpoint during this call gave the shard to the residual
                outcome = yield from self._poll(state, tracker, watermark, backoff)
                if outcome is None:
                    return  # the runner took the rest (checkpoint) or the budget is spent
                wait = backoff.get(state.shard_id, _MIN_CALL_INTERVAL_S)
                next_call[state.shard_id] = time.monotonic() + wait
                if outcome == "caught_up":
                    caught_up_since.setdefault(state.shard_id, time.monotonic())
                else:
                    caught_up_since.pop(state.shard_id, None)
            self._advance_idle(restriction, caught_up_since, watermark)
            if not restriction.bounded and time.monotonic() >= deadline:
                tracker.defer_remainder(Duration(seconds=0.2))
                return
            pending = [next_call.get(s.shard_id, 0.0) for s in ready_shards(restriction)]
            if pending:
                time.sleep(max(0.0, min(min(pending) - time.monotonic(), 0.2)))

    def _poll(
        self, state: ShardState, tracker: Any, watermark: Any, backoff: dict[str, float]
    ) -> Generator[TimestampedValue, None, str | None]:
        """One GetRecords call; returns "data", "caught_up", "ended" or None (stop)."""
        restriction: ShardRestriction = tracker.current_restriction()
        used = (state.shard_id, state.last_sequence)
        try:
            answer = self._get_records(state)
        except (_Throttled, _Unreachable) as err:
            if isinstance(err, _Unreachable):
                if restriction.bounded:
                    raise SourceUnavailableError(str(err)) from None
                if state.shard_id not in backoff:  # once per outage: then it backs off
                    _LOG.warning("%s; retrying with back-off", err)
            else:
                self._throttled.inc()
            backoff[state.shard_id] = min(
                _MAX_BACKOFF_S, max(_MIN_CALL_INTERVAL_S, backoff.get(state.shard_id, 0.1) * 2)
            )
            return "throttled"
        backoff.pop(state.shard_id, None)
        if "MillisBehindLatest" in answer:
            gauge_name = f"lag_ms.{self._stream}.{state.shard_id}"
            lag_ms = int(answer["MillisBehindLatest"])
            Metrics.gauge("dataplane.kinesis", gauge_name).set(lag_ms)
            set_gauge(f"lag_ms kinesis {self._stream}[{state.shard_id}]", lag_ms)
        for item in answer.get("Records", []):
            arrival_ms = _epoch_ms(item.get("ApproximateArrivalTimestamp"))
            if (
                restriction.bounded
                and restriction.stop_arrival_ms is not None
                and (arrival_ms > restriction.stop_arrival_ms)
            ):
                return "ended" if tracker.try_claim(("end", state.shard_id, {})) else None
            sequence = item["SequenceNumber"]
            current = tracker.current_restriction().shards.get(state.shard_id)
            if current is None:  # a checkpoint gave the shard to the residual
                return None
            before = current.last_sequence
            if not tracker.try_claim(("record", state.shard_id, sequence)):
                return None
            yield self._to_record(state.shard_id, item, arrival_ms, watermark, before)
        following = answer.get("NextShardIterator")
        self._iterators.pop(used, None)
        if following is None:  # SHARD_END: a split or merge closed it
            children = {} if restriction.bounded else self._children(state.shard_id)
            return "ended" if tracker.try_claim(("end", state.shard_id, children)) else None
        self._iterators[(state.shard_id, state.last_sequence)] = following
        if answer.get("Records"):
            return "data"
        if restriction.bounded and answer.get("MillisBehindLatest", 0) == 0:
            return "ended" if tracker.try_claim(("end", state.shard_id, {})) else None
        return "caught_up"

    def _get_records(self, state: ShardState) -> dict[str, Any]:
        for attempt in range(2):
            iterator = self._iterator(state)
            try:
                return dict(self._client.get_records(ShardIterator=iterator, Limit=_GET_LIMIT))
            except Exception as err:
                code = _error_code(err)
                if code == "ProvisionedThroughputExceededException":
                    raise _Throttled() from None
                if code == "ExpiredIteratorException" and attempt == 0:
                    self._renewed.inc()
                    self._iterators.pop((state.shard_id, state.last_sequence), None)
                    continue
                if _is_connection_error(err):
                    raise _Unreachable(f"{self._stream}/{state.shard_id}: {err}") from None
                raise SourceUnavailableError(
                    f"GetRecords failed on {self._stream}/{state.shard_id}: {err}"
                ) from None
        raise AssertionError("unreachable")

    def _iterator(self, state: ShardState) -> str:
        cached = self._iterators.get((state.shard_id, state.last_sequence))
        if cached is not None:
            return cached
        kwargs: dict[str, Any] = {"StreamName": self._stream, "ShardId": state.shard_id}
        if state.last_sequence is not None:
            kwargs.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=state.last_sequence,
            )
        elif state.start_type == "AT_TIMESTAMP":
            kwargs.update(
                ShardIteratorType="AT_TIMESTAMP",
                Timestamp=datetime.fromtimestamp(
                    int(state.start_value or 0) / 1000, tz=timezone.utc
                ),
            )
        elif state.start_type == "AFTER_SEQUENCE_NUMBER":
            kwargs.update(
                ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=state.start_value
            )
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        try:
            return str(self._client.get_shard_iterator(**kwargs)["ShardIterator"])
        except Exception as err:
            if _error_code(err) == "ProvisionedThroughputExceededException":
                raise _Throttled() from None
            if _is_connection_error(err):
                raise _Unreachable(f"{self._stream}/{state.shard_id}: {err}") from None
            raise SourceUnavailableError(
                f"GetShardIterator failed on {self._stream}/{state.shard_id}: {err}"
            ) from None

    def _children(self, shard_id: str) -> dict[str, tuple[str, ...]]:
        children = {}
        for shard in _list_shards(self._client, self._stream):
            parents = tuple(
                p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p
            )
            if shard_id in parents:
                children[shard["ShardId"]] = parents
        return children

    def _to_record(
        self,
        shard_id: str,
        item: Mapping[str, Any],
        arrival_ms: int,
        watermark: Any,
        prev: str | None,
    ) -> TimestampedValue:
        self._read.inc()
        note("records_read", source="kinesis", stream=self._stream, partition=shard_id)
        record = make_record(
            source="kinesis",
            stream=self._stream,
            partition=shard_id,
            position=item["SequenceNumber"],
            # The key's text as produced; a lone surrogate (JSON allows its escape) kept
            # as its code units rather than stopping the shard.
            key=str(item.get("PartitionKey", "")).encode("utf-8", "surrogatepass"),
            value=bytes(item["Data"]),
            event_time_ms=arrival_ms,
            prev_position=prev if prev is not None else CHAIN_START,
        )
        lag_ms = int(self._settings["max_out_of_orderness_s"] * 1000)
        advance_watermark(watermark, Timestamp(micros=(arrival_ms - lag_ms) * 1000))
        return TimestampedValue(record, Timestamp(micros=arrival_ms * 1000))

    def _advance_idle(
        self, restriction: ShardRestriction, caught_up_since: dict[str, float], watermark: Any
    ) -> None:
        """When every unfinished shard has been caught up for idle_timeout_s, follow the clock."""
        active = [s.shard_id for s in restriction.shards.values() if not s.done]
        idle_s = self._settings["idle_timeout_s"]
        now = time.monotonic()
        if active and all(now - caught_up_since.get(s, now + 1) >= idle_s for s in active):
            lag = Duration(micros=int(self._settings["max_out_of_orderness_s"] * 1e6))
            advance_watermark(watermark, Timestamp.now() - lag)


class _ReadShardsUnboundedDoFn(_ReadShardsDoFn):
    """The streaming flavour: the runner treats the output as unbounded."""

    process = unbounded(_ReadShardsDoFn.process)


class _Throttled(Exception):
    pass


class _Unreachable(Exception):
    """The endpoint did not answer: a streaming read backs off and tries again."""


def _is_connection_error(err: Exception) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    return isinstance(err, (BotoConnectionError, HTTPClientError))


def _epoch_ms(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, (int, float)):
        return int(value * 1000)
    return int(time.time() * 1000)


class ReadFromKinesis(beam.PTransform):
    """Reads a Kinesis data stream as :class:`~transforms.record.Record` elements.

    Records carry the stream name, the shard id as ``partition``, the sequence
    number as ``position``, the partition key as ``key`` and the approximate arrival
    time as event time.

    Args:
        stream: the stream name.
        iterator_type: ``TRIM_HORIZON`` (oldest retained), ``LATEST`` (what arrives
            after the start; pinned as a timestamp so resumes lose nothing),
            ``AT_TIMESTAMP`` (``start_timestamp_ms``) or ``AFTER_SEQUENCE_NUMBER``
            (``start_sequences``: shard -> sequence; other shards from the oldest).
        bounded: stop at each shard's end as of the start: records that arrived
            after the read began are left for the next run.
        max_records: stop after this many records in all (implies ``bounded``).
        region_name: AWS region; the standard AWS resolution when omitted.
        endpoint_url: an endpoint override, e.g. a local emulator.
        idle_timeout_s: after this long with every shard caught up, the watermark
            follows wall-clock time.
        max_out_of_orderness_s: how far behind the newest arrival the watermark trails.
        resume_from: the pipeline's Delta tables: shards they hold progress for are
            read after their committed sequence number, the others from
            ``iterator_type``.

    Raises:
        ConfigError: an unknown iterator type, or one without its start value.

    Example:
        >>> read = ReadFromKinesis("telemetry", bounded=True, region_name="us-east-1")
        >>> read.display_data()["iterator_type"]
        'TRIM_HORIZON'
    """

    def __init__(
        self,
        stream: str,
        *,
        iterator_type: str = "TRIM_HORIZON",
        start_timestamp_ms: int | None = None,
        start_sequences: Mapping[str, str] | None = None,
        bounded: bool = False,
        max_records: int = 0,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        idle_timeout_s: float = 5.0,
        max_out_of_orderness_s: float = 0.0,
        resume_from: ResumeFrom | None = None,
    ) -> None:
        super().__init__()
        if not stream:
            raise ConfigError("stream", "expected a Kinesis stream name, got nothing")
        if iterator_type not in ITERATOR_TYPES:
            raise ConfigError(
                "iterator_type", f"expected one of {list(ITERATOR_TYPES)}, got {iterator_type!r}"
            )
        if iterator_type == "AT_TIMESTAMP" and start_timestamp_ms is None:
            raise ConfigError("start_timestamp_ms", 'required with iterator_type="AT_TIMESTAMP"')
        if iterator_type == "AFTER_SEQUENCE_NUMBER" and not start_sequences:
            raise ConfigError(
                "start_sequences", 'required (shard -> sequence) with "AFTER_SEQUENCE_NUMBER"'
            )
        for name, value in (("max_records", max_records), ("idle_timeout_s", idle_timeout_s)):
            if value < 0:
                raise ConfigError(name, f"must be at least 0, got {value}")
        bad = [s for s in (start_sequences or {}).values() if not str(s).isdigit()]
        if bad:
            raise ConfigError("start_sequences", f"sequence numbers are decimal digits: {bad[:1]}")
        self._stream = stream
        self._bounded = bounded or max_records > 0
        self._client_args = {"region_name": region_name, "endpoint_url": endpoint_url}
        self._plan = {
            "iterator_type": iterator_type,
            "start_timestamp_ms": start_timestamp_ms,
            "start_sequences": {k: str(v) for k, v in (start_sequences or {}).items()},
            "bounded": self._bounded,
            "max_records": max_records,
        }
        self._settings = {
            "max_poll_s": 5.0,
            "idle_timeout_s": idle_timeout_s,
            "max_out_of_orderness_s": max_out_of_orderness_s,
        }
        self._resume_from = resume_from

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        from transforms.record import Record

        reader = _ReadShardsDoFn if self._bounded else _ReadShardsUnboundedDoFn
        return (
            pbegin
            | "Stream" >> beam.Create([self._stream])
            | "PlanShards"
            >> beam.ParDo(_PlanDoFn(self._client_args, self._plan, self._resume_from))
            | "ReadShards"
            >> beam.ParDo(
                reader(self._stream, self._client_args, self._settings)
            ).with_output_types(Record)
        )

    def display_data(self) -> dict[str, Any]:
        return {
            "stream": self._stream,
            "iterator_type": self._plan["iterator_type"],
            "bounded": self._bounded,
            "max_records": self._plan["max_records"],
            "region_name": self._client_args["region_name"] or "(AWS default)",
            "endpoint_url": self._client_args["endpoint_url"] or "(AWS default)",
        }


def _report_watermark(stream: str, watermark: Any) -> None:
    current = watermark.current_watermark()
    if current is not None:
        set_gauge(f"watermark_ms kinesis {stream}", current.micros // 1000)
