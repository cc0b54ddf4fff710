"""Benchmark: bounded read records/s per source on the local runner, against a JSONL file replay.

    python -m bench.bench_sources [--count 20000]

Starts the local services (Tansu broker, moto server, the Pub/Sub emulator where
installed), writes the same generated tweets to each, then times a bounded
pipeline ``read → count`` per source on the in-process runner. The file source
(one JSONL file) is the baseline each ratio is against, measured in the same run.
Pipeline start-up is included, as a user running a batch job sees it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from runners.local.aws import MotoServer
from runners.local.broker import LocalKafkaBroker
from runners.local.gcp import LocalPubSubEmulator, pubsub_emulator_binary
from transforms.sources import read_from_uri

# Counts reported by the in-process runner (a module global: the DoFn is pickled by reference).
_COUNTS: list[int] = []


def _keep_count(count: int) -> None:
    _COUNTS.append(count)


def _timed_read(uri: str) -> tuple[int, float]:
    # Run as ``-m``, this file is __main__, which cloudpickle copies by value: use the
    # importable module's function and list instead.
    module = importlib.import_module("bench.bench_sources")
    module._COUNTS.clear()
    started = time.perf_counter()
    with beam.Pipeline(runner=FnApiRunner()) as pipeline:
        _ = (
            pipeline
            | read_from_uri(uri, bounded=True)
            | beam.combiners.Count.Globally()
            | beam.Map(module._keep_count)
        )
    return sum(module._COUNTS), time.perf_counter() - started


@contextlib.contextmanager
def _services(with_pubsub: bool) -> Iterator[dict[str, str]]:
    with contextlib.ExitStack() as stack:
        found = {
            "kafka": stack.enter_context(LocalKafkaBroker()).bootstrap_servers,
            "moto": stack.enter_context(MotoServer()).endpoint_url,
        }
        if with_pubsub:
            found["pubsub"] = stack.enter_context(LocalPubSubEmulator(start_timeout_s=60)).host
        yield found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_sources")
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    messages = [m for m in generate_tweets(args.count, bad_ratio=0.0) if m.value]
    name = f"bench-{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory() as scratch,
        _services(pubsub_emulator_binary() is not None) as services,
    ):
        targets = {
            "file": (f"file://{scratch}/tweets.jsonl",) * 2,
            "kafka": (f"kafka://{services['kafka']}/{name}",) * 2,
            "kinesis": (f"kinesis://{name}?endpoint={services['moto']}&region=us-east-1",) * 2,
        }
        if "pubsub" in services:
            os.environ["PUBSUB_EMULATOR_HOST"] = services["pubsub"]
            from google.cloud import pubsub_v1  # type: ignore[attr-defined]

            topic = f"projects/bench-project/topics/{name}"
            subscription = f"projects/bench-project/subscriptions/{name}"
            pubsub_v1.PublisherClient().create_topic(name=topic)
            pubsub_v1.SubscriberClient().create_subscription(name=subscription, topic=topic)
            targets["pubsub"] = (f"pubsub://{topic}", f"pubsub://{subscription}")
        print(f"{len(messages)} tweets per source; bounded read → count on the in-process runner")
        print(f"{'source':8} {'records':>8} {'seconds':>8} {'records/s':>10} {'vs file':>8}")
        baseline = 0.0
        for source, (write_uri, read_uri) in targets.items():
            publish(write_uri, messages, partitions=2)
            count, seconds = _timed_read(read_uri)
            rate = count / seconds
            baseline = baseline or rate
            print(f"{source:8} {count:8,} {seconds:8.2f} {rate:10,.0f} {rate / baseline:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
