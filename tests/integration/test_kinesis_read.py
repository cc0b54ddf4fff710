"""ReadFromKinesis against moto server and kinesalite (real HTTP emulators, boto3 clients)."""

import threading
import time
import uuid
from collections import defaultdict

import apache_beam as beam
import boto3
import pytest
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.runners.sdf_utils import RestrictionTrackerView, ThreadsafeRestrictionTracker

from schemas.errors import ConfigError
from tests.helpers import collect, split_then_merge
from transforms.progress import LOCAL_PROGRESS
from transforms.sources import kinesis
from transforms.sources.kinesis import ReadFromKinesis, _PlanDoFn, _ReadShardsUnboundedDoFn
from transforms.sources.kinesis_shards import ShardSetTracker

pytestmark = pytest.mark.integration


def _client(endpoint):
    return boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")


def _new_stream(client, shards):
    name = f"s-{uuid.uuid4().hex[:10]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    return name


def _put(client, stream, values, *, keys=None):
    for n, value in enumerate(values):
        key = keys[n] if keys else f"k{n}"
        client.put_record(StreamName=stream, Data=value, PartitionKey=key)


def _read(endpoint, stream, **kwargs):
    (records,) = collect(lambda p: p | ReadFromKinesis(stream, endpoint_url=endpoint, **kwargs))
    return records


def _by_shard(records):
    shards = defaultdict(list)
    for record in records:
        shards[record.partition].append(int(record.position))
    return shards


def test_multi_shard_bounded_read_is_exactly_once_with_integer_sequences(moto_endpoint):
    client = _client(moto_endpoint)
    stream = _new_stream(client, 4)
    values = [f"v{n}".encode() for n in range(400)]
    _put(client, stream, values)
    records = _read(moto_endpoint, stream, bounded=True)
    assert sorted(r.value for r in records) == sorted(values)
    assert len({r.record_id for r in records}) == 400
    shards = _by_shard(records)
    assert len(shards) == 4
    for positions in shards.values():
        # moto numbers each shard 1, 2, ...: "10" sorts before "9" as text, not as int
        assert sorted(positions) == list(range(1, len(positions) + 1))
    assert {r.source for r in records} == {"kinesis"} and {r.stream for r in records} == {stream}


def test_max_records_caps_the_total_across_shards(moto_endpoint):
    client = _client(moto_endpoint)
    stream = _new_stream(client, 3)
    _put(client, stream, [f"v{n}".encode() for n in range(90)])
    assert len(_read(moto_endpoint, stream, max_records=40)) == 40


def test_an_empty_stream_and_empty_shards_finish(moto_endpoint):
    client = _client(moto_endpoint)
    assert _read(moto_endpoint, _new_stream(client, 2), bounded=True) == []


def test_after_sequence_number_starts_past_the_given_record(kinesalite_endpoint):
    client = _client(kinesalite_endpoint)
    stream = _new_stream(client, 1)
    _put(client, stream, [f"v{n}".encode() for n in range(10)])
    first = sorted(_read(kinesalite_endpoint, stream, bounded=True), key=lambda r: int(r.position))
    later = _read(
        kinesalite_endpoint,
        stream,
        bounded=True,
        iterator_type="AFTER_SEQUENCE_NUMBER",
        start_sequences={first[0].partition: first[3].position},
    )
    assert sorted(r.value for r in later) == [f"v{n}".encode() for n in range(4, 10)]
    assert len(first[0].position) > 40  # kinesalite's realistic 56-digit sequence numbers


def test_bounded_read_during_a_live_split_and_merge_reads_everything_put_before_it(
    kinesalite_endpoint, monkeypatch
):
    from tests.holding_proxies import HeldCalls

    client = _client(kinesalite_endpoint)
    stream = _new_stream(client, 2)
    before = [f"before-{n}".encode() for n in range(300)]
    _put(client, stream, before)
    shards = client.list_shards(StreamName=stream)["Shards"]
    monkeypatch.setattr(
        kinesis, "_GET_LIMIT", 10
    )  # 15 calls per shard: the reshard lands mid-shard
    started = LOCAL_PROGRESS["records_read"]
    read_over, failures, resharded = threading.Event(), [], []

    def reshard_once_reading(gate):
        """Once the first records are read (the read's other calls held), split and merge."""
        try:
            deadline = time.monotonic() + 120
            while LOCAL_PROGRESS["records_read"] == started:
                if read_over.is_set() or time.monotonic() > deadline:
                    return  # the read ended (or never began): the test fails below
                time.sleep(0.01)
            _split_then_merge(client, stream, shards[0])
            resharded.append(LOCAL_PROGRESS["records_read"] - started)
        except BaseException as err:  # re-raised in the test's thread
            failures.append(err)
        finally:
            gate.release()

    # The reader's first GetRecords is answered; the next ones wait until the reshard is done.
    with HeldCalls(kinesalite_endpoint, operation="GetRecords", allow=1) as gate:
        reshard = threading.Thread(target=reshard_once_reading, args=(gate,))
        reshard.start()
        try:
            records = _read(gate.url, stream, bounded=True)
        finally:
            read_over.set()
            reshard.join(180)
    assert not reshard.is_alive(), "the reshard did not finish within 180 s"
    if failures:
        raise failures[0]
    assert resharded and 0 < resharded[0] < 300  # the reshard happened while the read was on
    values = sorted(r.value for r in records)
    assert values == sorted(before)  # nothing lost, nothing twice, nothing from after the start
    now = client.list_shards(StreamName=stream)["Shards"]
    assert len(now) == 5  # two at the start, two children of the split, one of the merge


def _split_then_merge(client, stream, shard):
    split_then_merge(client, stream, shard, lambda: _put(client, stream, [b"after-split"] * 5))


def _streaming_calls(endpoint, stream, *, calls, between):
    """Drives the streaming reader as a runner does: process, checkpoint, resume the residual."""
    plan = _PlanDoFn(
        {"region_name": "us-east-1", "endpoint_url": endpoint},
        {"iterator_type": "TRIM_HORIZON", "bounded": False, "max_records": 0},
    )
    (restriction,) = list(plan.process(stream))
    reader = _ReadShardsUnboundedDoFn(
        stream,
        {"region_name": "us-east-1", "endpoint_url": endpoint},
        {"max_poll_s": 1.0, "idle_timeout_s": 0.5, "max_out_of_orderness_s": 0.0},
    )
    reader.setup()
    watermark = ManualWatermarkEstimator(None)
    out = []
    for call in range(calls):
        tracker = ThreadsafeRestrictionTracker(ShardSetTracker(restriction))
        out += [v.value for v in reader._read_shards(RestrictionTrackerView(tracker), watermark)]
        residual, _delay = tracker.deferred_status()
        restriction = residual
        between(call)
    return out, restriction


def test_streaming_reads_children_after_parents_across_checkpoints(kinesalite_endpoint):
    client = _client(kinesalite_endpoint)
    stream = _new_stream(client, 1)
    keys = [f"key-{n % 5}" for n in range(50)]
    sent = []

    def produce(call):
        batch = [f"{call}-{n}".encode() for n in range(50)]
        _put(client, stream, batch, keys=keys)
        sent.extend(zip(keys, batch, strict=True))
        if call == 1:
            shard = client.list_shards(StreamName=stream)["Shards"][0]
            _split_then_merge(client, stream, shard)

    produce(-1)
    records, last = _streaming_calls(kinesalite_endpoint, stream, calls=5, between=produce)
    tail, _ = _streaming_calls_from(kinesalite_endpoint, stream, last)
    records += tail
    assert sorted(r.value for r in records) == sorted(v for _, v in sent) + sorted(
        [b"after-split"] * 5
    )
    assert len({r.record_id for r in records}) == len(records)
    per_key = defaultdict(list)
    for record in records:
        if record.value != b"after-split":
            per_key[record.key.decode()].append(record.value)
    for key, values in per_key.items():  # parents before children: each key stays in order
        assert values == [v for k, v in sent if k == key], key
    assert len(last.shards) == 4  # the parent, two children of the split, one of the merge


def _streaming_calls_from(endpoint, stream, restriction):
    reader = _ReadShardsUnboundedDoFn(
        stream,
        {"region_name": "us-east-1", "endpoint_url": endpoint},
        {"max_poll_s": 1.0, "idle_timeout_s": 0.5, "max_out_of_orderness_s": 0.0},
    )
    reader.setup()
    tracker = ThreadsafeRestrictionTracker(ShardSetTracker(restriction))
    out = list(reader._read_shards(RestrictionTrackerView(tracker), ManualWatermarkEstimator(None)))
    return [v.value for v in out], tracker.deferred_status()[0]


def test_configuration_errors_name_the_parameter():
    with pytest.raises(ConfigError, match="iterator_type: expected one of"):
        ReadFromKinesis("s", iterator_type="OLDEST")
    with pytest.raises(ConfigError, match="start_timestamp_ms: required"):
        ReadFromKinesis("s", iterator_type="AT_TIMESTAMP")
    with pytest.raises(ConfigError, match="start_sequences: sequence numbers are decimal"):
        ReadFromKinesis("s", iterator_type="AFTER_SEQUENCE_NUMBER", start_sequences={"a": "x1"})


def test_an_unknown_stream_fails_naming_it(moto_endpoint):
    with pytest.raises(
        Exception, match="cannot list the shards of Kinesis stream 'no-such-stream'"
    ):
        _read(moto_endpoint, "no-such-stream", bounded=True)


def test_throttled_get_records_back_off_and_nothing_is_lost(moto_endpoint):
    from tests.throttle_proxy import ThrottlingProxy

    client = _client(moto_endpoint)
    stream = _new_stream(client, 1)
    values = [f"v{n}".encode() for n in range(50)]
    _put(client, stream, values)
    # botocore (standard retries) tries a call 4 times; then the reader backs off, calls again.
    with ThrottlingProxy(moto_endpoint, operation="GetRecords", count=5) as proxy:
        records = _read(proxy.url, stream, bounded=True)
    assert sorted(r.value for r in records) == sorted(values)
    assert len(proxy.refused) == 5
    assert proxy.refused[4] - proxy.refused[3] >= 0.2  # the reader waited before calling again


_STREAMED: list = []


class _Keep(beam.DoFn):
    def process(self, record):
        _STREAMED.append(record)


def test_a_streaming_read_on_the_local_runner_takes_records_put_while_it_runs(moto_endpoint):
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_pipelines.launch.presets import resolve_runner
    from tests.helpers import finish_within
    from transforms.stop import clear_stop, request_stop

    client = _client(moto_endpoint)
    stream = _new_stream(client, shards=2)
    _put(client, stream, [f"before-{n}".encode() for n in range(20)])
    options = PipelineOptions(["--runner=direct"])
    pipeline = beam.Pipeline(runner=resolve_runner(options, bounded=False), options=options)
    _ = pipeline | ReadFromKinesis(stream, endpoint_url=moto_endpoint) | beam.ParDo(_Keep())
    _STREAMED.clear()
    clear_stop()
    result = pipeline.run()
    try:
        deadline = time.monotonic() + 120
        while len(_STREAMED) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        _put(client, stream, [f"after-{n}".encode() for n in range(20)])
        while len(_STREAMED) < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        request_stop()
        finish_within(result, 120)
        clear_stop()
    values = sorted(record.value.decode() for record in _STREAMED)
    assert values == sorted([f"before-{n}" for n in range(20)] + [f"after-{n}" for n in range(20)])
