"""Benchmark: the sentiment pipeline on DirectRunner vs a hand-written loop, same topic, one run.

    python -m bench.bench_sentiment [--count 20000]

(a) one process: consume → JSON → validate → VADER → Arrow → Delta (10k rows per commit);
(b) the Beam pipeline, bounded, on the FnApiRunner. Prints events/s of each and b/a.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import fastjsonschema
import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, TopicPartition
from deltalake import write_deltalake
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from beam_pipelines import sentiment
from beam_pipelines.feeds.kafka import produce
from beam_pipelines.feeds.tweets import generate_tweets
from runners.local.broker import LocalKafkaBroker
from schemas.registry import LocalFileRegistry


def hand_loop(bootstrap: str, topic: str, partitions: int, table: str) -> int:
    """The same work without Beam; returns records consumed."""
    validate = fastjsonschema.compile(LocalFileRegistry().latest("tweet").schema)
    analyzer = SentimentIntensityAnalyzer()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 20,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    rows, seen, done = [], 0, set()
    while len(done) < partitions:
        for m in consumer.consume(1000, timeout=1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    done.add(m.partition())
                continue
            seen += 1
            try:
                doc = json.loads(m.value().decode("utf-8"))
                validate(doc)
            except Exception:
                continue
            scores = analyzer.polarity_scores(doc["text"])
            rows.append(
                {
                    "id": doc["id"],
                    "text": doc["text"],
                    "partition": m.partition(),
                    "offset": m.offset(),
                    "compound": scores["compound"],
                    "neg": scores["neg"],
                    "neu": scores["neu"],
                    "pos": scores["pos"],
                }
            )
            if len(rows) >= 10_000:
                write_deltalake(table, pa.Table.from_pylist(rows), mode="append")
                rows = []
    if rows:
        write_deltalake(table, pa.Table.from_pylist(rows), mode="append")
    consumer.close()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    lake = tempfile.mkdtemp(prefix="bench-")
    with LocalKafkaBroker() as broker:
        produce(broker.bootstrap_servers, "tweets", generate_tweets(args.count, bad_ratio=0.05))
        started = time.perf_counter()
        seen = hand_loop(broker.bootstrap_servers, "tweets", 3, f"{lake}/hand")
        hand_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = sentiment.run(
            [
                f"--source=kafka://{broker.bootstrap_servers}/tweets",
                f"--output={lake}/beam",
                f"--dlq={lake}/dlq",
                "--bounded",
                "--runner=direct",
            ]
        )
        beam_s = time.perf_counter() - started
    a, b = seen / hand_s, summary.records_in / beam_s
    print(f"records: hand loop {seen}, pipeline {summary.records_in}")
    print(f"(a) hand-written loop : {a:9,.0f} events/s ({hand_s:.2f} s)")
    print(f"(b) pipeline, direct  : {b:9,.0f} events/s ({beam_s:.2f} s, startup included)")
    print(f"ratio b/a             : {b / a:.2f}")


if __name__ == "__main__":
    main()
