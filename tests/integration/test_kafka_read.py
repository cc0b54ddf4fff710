"""ReadFromKafka against a real broker (local Tansu, or $KAFKA_BOOTSTRAP_SERVERS)."""

import time

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to
from confluent_kafka import Consumer, TopicPartition

from runners.local.broker import LocalKafkaBroker
from runners.local.process import free_port
from schemas.errors import ConfigError, SourceUnavailableError
from tests.helpers import produce
from transforms.record import make_record_id
from transforms.sources import ReadFromKafka

pytestmark = pytest.mark.integration
BASE_TS = 1_700_000_000_000


def _read(bootstrap, topic, check, **kwargs):
    with beam.Pipeline(runner=FnApiRunner()) as p:
        records = p | ReadFromKafka(bootstrap_servers=bootstrap, topic=topic, **kwargs)
        check(records)


def _coords(records):
    return records | "Coords" >> beam.Map(lambda r: (r.partition, r.position, r.value))


def test_interleaved_partitions_are_read_exactly_once(kafka_bootstrap, new_topic):
    topic = new_topic(partitions=4)
    n = 2000
    produce(kafka_bootstrap, topic, ((i % 4, f"v{i}".encode(), BASE_TS + i) for i in range(n)))
    expected = [(str(i % 4), str(i // 4), f"v{i}".encode()) for i in range(n)]

    def check(records):
        assert_that(_coords(records), equal_to(expected))

    _read(kafka_bootstrap, topic, check, bounded=True)


def test_empty_partitions_and_an_empty_topic_finish(kafka_bootstrap, new_topic):
    topic = new_topic(partitions=3)
    produce(kafka_bootstrap, topic, ((1, b"only", BASE_TS) for _ in range(1)))
    _read(
        kafka_bootstrap,
        topic,
        lambda r: assert_that(_coords(r), equal_to([("1", "0", b"only")])),
        bounded=True,
    )
    empty = new_topic(partitions=2)
    _read(kafka_bootstrap, empty, lambda r: assert_that(r, equal_to([])), bounded=True)


def test_bounded_read_stops_at_the_end_seen_at_start(kafka_bootstrap, new_topic):
    from transforms.sources.kafka_config import consumer_config
    from transforms.sources.kafka_partitions import PartitionPlan, plan_partition_reads

    topic = new_topic(partitions=2)
    # Batched produce: some brokers report a stale high watermark for batches; the
    # planner must find the true end (partition EOF) anyway.
    produce(kafka_bootstrap, topic, ((i % 2, b"before", BASE_TS) for i in range(100)))
    config = consumer_config(kafka_bootstrap, {})
    consumer = Consumer(config)
    plan = plan_partition_reads(
        consumer, topic, PartitionPlan(bounded=True, timeout_s=10), config=config
    )
    consumer.close()
    assert [(r.partition, r.start_offset, r.stop_offset) for r in plan] == [(0, 0, 50), (1, 0, 50)]
    produce(kafka_bootstrap, topic, ((i % 2, b"after", BASE_TS) for i in range(100)))

    with beam.Pipeline(runner=FnApiRunner()) as p:
        from transforms.sources.kafka import _ReaderSettings, _ReadPartitionDoFn

        settings = _ReaderSettings(
            max_poll_s=5.0, idle_timeout_s=5.0, max_out_of_orderness_s=0.0, stall_timeout_s=30.0
        )
        values = (
            p
            | beam.Create(plan)
            | beam.ParDo(_ReadPartitionDoFn(config, settings))
            | beam.Map(lambda r: r.value)
        )
        assert_that(values | beam.combiners.Count.PerElement(), equal_to([(b"before", 100)]))


def test_max_records_caps_the_total(kafka_bootstrap, new_topic):
    topic = new_topic(partitions=3)
    produce(kafka_bootstrap, topic, ((i % 3, b"x", BASE_TS + i) for i in range(300)))
    _read(
        kafka_bootstrap,
        topic,
        lambda r: assert_that(r | beam.combiners.Count.Globally(), equal_to([100])),
        max_records=100,
    )


def test_a_batched_read_holds_the_same_records_in_offset_order(kafka_bootstrap, new_topic):
    """batched=True: the same records (coordinates, chain links, times) as one per element,
    each batch from one partition in offset order, stamped with its earliest event time."""
    topic = new_topic(partitions=3)
    n = 1500
    # Event times go back and forth so a batch's earliest is not its first.
    produce(
        kafka_bootstrap,
        topic,
        ((i % 3, f"v{i}".encode(), BASE_TS + (i * 7919) % 1000) for i in range(n)),
    )

    def fields(r):
        return (r.partition, r.position, r.prev_position, r.value, r.event_time_ms, r.record_id)

    def check_single(records):
        assert_that(records | beam.Map(fields), equal_to(_expected()), label="single")

    def check_batched(batches):
        in_order = batches | "InOrder" >> beam.Map(
            lambda b, ts=beam.DoFn.TimestampParam: (
                len({r.partition for r in b}) == 1
                and [int(r.position) for r in b] == sorted(int(r.position) for r in b)
                and ts.micros == min(r.event_time_ms for r in b) * 1000
            )
        )
        assert_that(in_order | beam.Filter(lambda ok: not ok), equal_to([]), label="order")
        records = batches | "Items" >> beam.FlatMap(lambda b: b)
        assert_that(records | "Fields" >> beam.Map(fields), equal_to(_expected()), label="same")

    def _expected():
        out = []
        for p in range(3):
            offsets = range(len(range(p, n, 3)))
            for o in offsets:
                i = p + 3 * o
                prev = "start" if o == 0 else str(o - 1)
                out.append((str(p), str(o), prev, f"v{i}".encode(), BASE_TS + (i * 7919) % 1000))
        return [(*t, make_record_id("kafka", topic, t[0], t[1])) for t in out]

    _read(kafka_bootstrap, topic, check_single, bounded=True)
    _read(kafka_bootstrap, topic, check_batched, bounded=True, batched=True)


def test_start_positions(kafka_bootstrap, new_topic):
    topic = new_topic(partitions=2)
    produce(
        kafka_bootstrap, topic, ((i % 2, str(i).encode(), BASE_TS + i * 1000) for i in range(20))
    )
    values = lambda r: r | beam.Map(lambda rec: int(rec.value))  # noqa: E731

    _read(
        kafka_bootstrap, topic, lambda r: assert_that(r, equal_to([])), start="latest", bounded=True
    )
    _read(
        kafka_bootstrap,
        topic,
        lambda r: assert_that(values(r), equal_to([i for i in range(20) if i >= 14])),
        start="timestamp",
        start_timestamp_ms=BASE_TS + 14_000,
        bounded=True,
    )
    _read(
        kafka_bootstrap,
        topic,
        lambda r: assert_that(values(r), equal_to([1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 16, 18])),
        start="offsets",
        start_offsets={0: 8},
        bounded=True,
    )

    group = f"g-{topic}"
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    consumer.commit(
        offsets=[TopicPartition(topic, 0, 9), TopicPartition(topic, 1, 5)], asynchronous=False
    )
    consumer.close()
    _read(
        kafka_bootstrap,
        topic,
        lambda r: assert_that(values(r), equal_to([18, 11, 13, 15, 17, 19])),
        start="committed",
        bounded=True,
        consumer_config={"group.id": group},
    )


def test_headers_keys_and_timestamps_are_kept(kafka_bootstrap, new_topic):
    from confluent_kafka import Producer

    topic = new_topic(partitions=1)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(
        topic, key=b"k1", value=b"v", headers=[("trace", b"abc")], timestamp=BASE_TS + 5
    )
    producer.flush()

    def check(records):
        assert_that(
            records
            | beam.Map(lambda r: (r.key, [(h.name, h.value) for h in r.headers], r.event_time_ms)),
            equal_to([(b"k1", [("trace", b"abc")], BASE_TS + 5)]),
        )

    _read(kafka_bootstrap, topic, check, bounded=True)


def test_missing_topic_fails_with_a_clear_error(kafka_bootstrap):
    with pytest.raises(Exception, match="topic: Kafka topic 'no-such-topic-x' is not readable"):
        _read(kafka_bootstrap, "no-such-topic-x", lambda r: None, bounded=True)


def test_unreachable_broker_fails_within_the_metadata_timeout():
    started = time.monotonic()
    with pytest.raises(Exception, match=r"cannot reach Kafka at bootstrap.servers=127.0.0.1:\d+"):
        _read(f"127.0.0.1:{free_port()}", "t", lambda r: None, bounded=True, metadata_timeout_s=2)
    assert time.monotonic() - started < 30


def test_a_stopped_broker_fails_the_next_read_naming_the_servers():
    with LocalKafkaBroker() as broker:
        from transforms.sources.kafka_admin import ensure_topic

        ensure_topic(broker.bootstrap_servers, "t", partitions=1)
    with pytest.raises(Exception, match=r"cannot reach Kafka at bootstrap\.servers="):
        _read(broker.bootstrap_servers, "t", lambda r: None, bounded=True, metadata_timeout_s=2)


def test_config_errors_are_value_errors_and_outages_are_retryable():
    from schemas.errors import RetryableError

    assert issubclass(ConfigError, ValueError)
    assert issubclass(SourceUnavailableError, RetryableError)


class _RawName(str):
    """A header name kafka-python writes as these bytes, whatever they are."""

    raw: bytes

    def __new__(cls, raw: bytes) -> "_RawName":
        name = super().__new__(cls, raw.decode("latin-1"))
        name.raw = raw
        return name

    def encode(self, *args, **kwargs) -> bytes:
        return self.raw


def _not_utf8_names(count: int) -> list[bytes]:
    """Header names that are not UTF-8: each kind of broken sequence, then random ones."""
    import random

    names = [b"\xff", b"\x80abc", b"ok\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80"]
    rng = random.Random(17)
    while len(names) < count:
        name = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12)))
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            names.append(name)
    return names


def test_a_header_name_that_is_not_utf8_is_a_dead_letter_not_a_stop(kafka_bootstrap, new_topic):
    import json

    from kafka import KafkaProducer

    from transforms.record import UNREADABLE_HEADER_PREFIX as PREFIX
    from transforms.validate import DecodeAndValidate

    topic = new_topic(partitions=1)
    names = _not_utf8_names(20)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i, name in enumerate(names):
        tweet = {"id": str(i), "text": "fine", "created_at": "2024-01-01T00:00:00Z"}
        tweet["user"] = {"id": "u", "handle": "h"}
        value = json.dumps(tweet).encode()
        producer.send(topic, value=value, key=b"k%d" % i, headers=[(_RawName(name), b"x")])
        producer.send(topic, value=value, key=b"good", headers=[("trace", b"t")])
    producer.flush()
    producer.close()

    with beam.Pipeline(runner=FnApiRunner()) as p:
        records = p | ReadFromKafka(bootstrap_servers=kafka_bootstrap, topic=topic, bounded=True)
        rows, dead = records | DecodeAndValidate(subject="tweet")
        assert_that(
            rows | beam.Map(lambda r: (r["_position"], r["_key"], r["_headers"])),
            equal_to([(str(2 * i + 1), b"good", [("trace", b"t")]) for i in range(len(names))]),
            label="rows",
        )
        # Each name kept as the hex of its bytes, each value as produced.
        assert_that(
            dead
            | beam.Map(
                lambda d: (d.error_type, d.record.position, d.record.key, list(d.record.headers))
            ),
            equal_to(
                [
                    ("UnreadableHeaders", str(2 * i), b"k%d" % i, [(PREFIX + name.hex(), b"x")])
                    for i, name in enumerate(names)
                ]
            ),
            label="dead",
        )
