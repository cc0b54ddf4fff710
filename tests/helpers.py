"""Small helpers shared by tests: producing to Kafka and reading Delta tables back."""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from confluent_kafka import Producer
from deltalake import DeltaTable


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[int, bytes | None, int]],
    *,
    key: bytes | None = None,
) -> int:
    """Produces (partition, value, timestamp_ms) triples; returns how many."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "log.connection.close": False}
    )
    count = 0
    for partition, value, ts in messages:
        producer.produce(topic, value=value, key=key, partition=partition, timestamp=ts)
        producer.poll(0)
        count += 1
    assert producer.flush(30) == 0
    return count


def read_table(uri: str) -> pa.Table:
    return DeltaTable(uri).to_pyarrow_table()
