"""Produce synthetic data to Kafka.

    python -m beam_pipelines.generate tweets --bootstrap 127.0.0.1:9092 --topic tweets \\
        --count 10000 --bad-ratio 0.05
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Sequence

from confluent_kafka import Producer

from beam_pipelines.tweetgen import GeneratedMessage, generate_tweets
from transforms.errors import DataplaneError, SourceUnavailableError
from transforms.sources.kafka_admin import ensure_topic

__all__ = ["main", "produce"]


def produce(
    bootstrap_servers: str, topic: str, messages: Iterable[GeneratedMessage], *, partitions: int = 3
) -> Counter[str]:
    """Produces ``messages`` (keyed; partitions chosen by key hash); returns counts by kind."""
    ensure_topic(bootstrap_servers, topic, partitions=partitions)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "linger.ms": 20,
            "acks": "all",
            "log.connection.close": False,
        }
    )
    failures: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(str(err))

    kinds: Counter[str] = Counter()
    for message in messages:
        while True:
            try:
                producer.produce(
                    topic,
                    key=message.key,
                    value=message.value,
                    timestamp=message.timestamp_ms,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:
                producer.poll(0.05)
        kinds[message.kind] += 1
        producer.poll(0)
    if producer.flush(30) or failures:
        raise SourceUnavailableError(
            f"{len(failures)} messages were not delivered to {topic}: {failures[:1]}"
        )
    return kinds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_pipelines.generate")
    sub = parser.add_subparsers(dest="dataset", required=True)
    tweets = sub.add_parser("tweets", help="synthetic tweets with a share of malformed records")
    tweets.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers HOST:PORT")
    tweets.add_argument("--topic", required=True)
    tweets.add_argument("--count", type=int, default=10_000)
    tweets.add_argument("--bad-ratio", type=float, default=0.05)
    tweets.add_argument("--partitions", type=int, default=3, help="when the topic is created")
    tweets.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        kinds = produce(
            args.bootstrap,
            args.topic,
            generate_tweets(args.count, bad_ratio=args.bad_ratio, seed=args.seed),
            partitions=args.partitions,
        )
    except (DataplaneError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"produced {sum(kinds.values())} messages to {args.topic}: {dict(sorted(kinds.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
