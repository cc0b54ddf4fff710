"""Benchmark: the sentiment pipeline on DirectRunner vs a hand-written loop, same topic, one run.

    python -m bench.bench_sentiment [--count 20000]

(a) one process (bench.loops.sentiment_loop): consume → decode + validate → clean_text →
    VADER → label → Delta (10k rows per commit), dead letters to Delta too;
(b) the Beam pipeline, bounded, on the FnApiRunner. Prints events/s of each and b/a.

For every benchmark in one table, each side in its own process: ``python -m bench``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from beam_pipelines import sentiment
from beam_pipelines.feeds.kafka import produce
from beam_pipelines.feeds.tweets import generate_tweets
from bench.loops import sentiment_loop
from bench.sides import sentiment_flags
from runners.local.broker import LocalKafkaBroker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as lake, LocalKafkaBroker() as broker:
        produce(broker.bootstrap_servers, "tweets", generate_tweets(args.count, bad_ratio=0.05))
        started = time.perf_counter()
        seen = sentiment_loop(broker.bootstrap_servers, "tweets", 3, f"{lake}/hand")["read"]
        hand_s = time.perf_counter() - started
        started = time.perf_counter()
        summary = sentiment.run(sentiment_flags(broker.bootstrap_servers, "tweets", lake))
        beam_s = time.perf_counter() - started
    a, b = seen / hand_s, summary.records_in / beam_s
    print(f"records: hand loop {seen}, pipeline {summary.records_in}")
    print(f"(a) hand-written loop : {a:9,.0f} events/s ({hand_s:.2f} s)")
    print(f"(b) pipeline, direct  : {b:9,.0f} events/s ({beam_s:.2f} s, with its build)")
    print(f"ratio b/a             : {b / a:.2f}")


if __name__ == "__main__":
    main()
