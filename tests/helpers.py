"""Small helpers shared by tests: producing to Kafka and reading Delta tables back."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from confluent_kafka import Producer
from deltalake import DeltaTable

from transforms.record import make_record


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


def rows_in_commit_order(uri: str) -> list[dict[str, Any]]:
    """A local Delta table's rows in the order they were committed: by version, then
    by the order of the files each commit added and the rows within each file."""
    import json
    from pathlib import Path

    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for entry in sorted(Path(uri, "_delta_log").glob("*.json")):
        for line in entry.read_text().splitlines():
            action = json.loads(line)
            if "add" in action and action["add"].get("dataChange", True):
                rows += pq.read_table(Path(uri, action["add"]["path"])).to_pylist()
    return rows


def split_then_merge(client: Any, stream: str, shard: dict[str, Any], between: Any) -> None:
    """Splits a Kinesis ``shard`` in two, calls ``between()``, then merges the two children."""
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    client.split_shard(
        StreamName=stream, ShardToSplit=shard["ShardId"], NewStartingHashKey=str((low + high) // 2)
    )
    wait_active(client, stream)
    between()
    children = [
        s["ShardId"]
        for s in client.list_shards(StreamName=stream)["Shards"]
        if s.get("ParentShardId") == shard["ShardId"]
    ]
    client.merge_shards(
        StreamName=stream, ShardToMerge=children[0], AdjacentShardToMerge=children[1]
    )
    wait_active(client, stream)


def wait_active(client: Any, stream: str) -> None:
    client.get_waiter("stream_exists").wait(
        StreamName=stream, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )


# Elements gathered by _Gather, per collect() call; the in-process runner shares this module.
_GATHERED: dict[str, list] = {}


class _Gather(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, element: Any) -> None:
        _GATHERED.setdefault(self._key, []).append(element)


def collect(build: Callable[[beam.Pipeline], Any]) -> tuple[list, ...]:
    """Runs ``build(pipeline)`` on the in-process runner; returns each output's elements.

    ``build`` returns one PCollection or a tuple of them (e.g. ``(rows, dead_letters)``).
    """
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        outputs = build(pipeline)
        if isinstance(outputs, beam.PCollection):
            outputs = (outputs,)
        keys = [uuid.uuid4().hex for _ in outputs]
        for n, (key, output) in enumerate(zip(keys, outputs, strict=True)):
            _ = output | f"Gather{n}" >> beam.ParDo(_Gather(key))
    return tuple(_GATHERED.pop(key, []) for key in keys)


def create_records(values: Iterable[bytes | None], *, stream: str = "t") -> beam.PTransform:
    """A Create of Records with the given values at positions 0, 1, ... of partition 0."""
    return beam.Create(
        [
            make_record(
                source="kafka", stream=stream, partition=0, position=n, value=v, event_time_ms=n
            )
            for n, v in enumerate(values)
        ]
    )


def finish_within(result: Any, seconds: float) -> None:
    """Waits for a pipeline result; fails the test (instead of hanging) past ``seconds``."""
    import threading

    failure: list[BaseException] = []

    def wait() -> None:
        try:
            result.wait_until_finish()
        except BaseException as err:  # re-raised in the test's thread
            failure.append(err)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(seconds)
    assert not waiter.is_alive(), f"the pipeline did not finish within {seconds} s"
    if failure:
        raise failure[0]


def dataflow_dry_run_flags(setup_py: Any) -> list[str]:
    """Flags that build a Dataflow job offline: an example project and bucket, no auth."""
    return [
        "--output=gs://example-bucket/lake/tweets",
        "--dlq=gs://example-bucket/lake/dead_letters",
        "--runner=dataflow",
        "--project=example-project",
        "--region=europe-west1",
        "--temp_location=gs://example-bucket/tmp",
        "--staging_location=gs://example-bucket/staging",
        f"--setup_file={setup_py}",
        "--dry_run=True",
        "--no_auth",
    ]
