"""Streaming sentiment: produce→visible latency, stop time, and exactly once across a restart.

    python -m bench.bench_streaming --waves 5 --wave-size 1000

Starts a local broker (or uses ``--bootstrap``), runs ``python -m
beam_pipelines.sentiment`` streaming on the local runner, produces waves of tweets
(5 % malformed) while it runs and times when each record becomes visible in the
output or dead-letter table. Then Ctrl-C (timed), a wave produced while it is down,
a restart, and a check that every produced record is in the tables exactly once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from beam_pipelines.feeds.tweets import generate_tweets
from bench.streaming import StreamingProcess, TableWatcher, TimedProducer, percentile
from transforms.sources.kafka_admin import ensure_topic


def _pipeline(
    bootstrap: str, topic: str, lake: Path, latency_s: float, runner: list[str]
) -> StreamingProcess:
    return StreamingProcess(
        "beam_pipelines.sentiment",
        [
            f"--source=kafka://{bootstrap}/{topic}",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            f"--max_batch_latency_s={latency_s}",
            *runner,
        ],
    ).start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_streaming")
    parser.add_argument("--bootstrap", help="a running broker (default: start a local one)")
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--wave-size", type=int, default=1000)
    parser.add_argument("--gap-s", type=float, default=2.0, help="pause between waves")
    parser.add_argument("--max-batch-latency-s", type=float, default=5.0)
    parser.add_argument(
        "--portable",
        action="store_true",
        help="run on PortableRunner (LOOPBACK) against a dataplane job-service started here",
    )
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        bootstrap = args.bootstrap
        if not bootstrap:
            from runners.local.broker import LocalKafkaBroker

            bootstrap = stack.enter_context(LocalKafkaBroker()).bootstrap_servers
        lake = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        runner = ["--runner=direct"]
        if args.portable:
            from runners.local.job_service import LocalJobService

            jobs = stack.enter_context(LocalJobService(streaming=True, start_timeout_s=60))
            endpoint = f"--job_endpoint={jobs.endpoint}"
            runner = ["--runner=portable", endpoint, "--environment_type=LOOPBACK"]
        topic = f"bench-{uuid.uuid4().hex[:8]}"
        ensure_topic(bootstrap, topic, partitions=3)
        producer = TimedProducer(bootstrap, topic)
        watcher = TableWatcher([str(lake / "tweets"), str(lake / "dead_letters")])
        seed = iter(range(1, 10_000))

        def wave() -> list[tuple[str, str]]:
            return producer.send(generate_tweets(args.wave_size, bad_ratio=0.05, seed=next(seed)))

        started = time.monotonic()
        run = _pipeline(bootstrap, topic, lake, args.max_batch_latency_s, runner)
        first = wave()
        if not watcher.wait_for(first, timeout_s=180):
            print("first wave not visible after 180 s", file=sys.stderr)
            run.kill()
            return 1
        print(f"start-up + first wave visible: {time.monotonic() - started:.1f} s")
        latencies: list[float] = []
        for _ in range(args.waves):
            time.sleep(args.gap_s)
            keys = wave()
            if not watcher.wait_for(keys, timeout_s=120):
                print("a wave was not visible after 120 s", file=sys.stderr)
                run.kill()
                return 1
            latencies += [watcher.seen_at[k] - producer.produced_at[k] for k in keys]
        peak_mb = run.peak_rss_mb()
        stopped = run.stop()
        print(f"stop: exit {stopped.exit_code} after {stopped.stop_s:.1f} s")
        print(f"peak RSS of the pipeline process: {peak_mb:,.0f} MiB")
        while_down = wave()
        rerun = _pipeline(bootstrap, topic, lake, args.max_batch_latency_s, runner)
        visible = watcher.wait_for(while_down, timeout_s=180)
        restopped = rerun.stop()
        watcher.poll()
        produced = set(producer.produced_at)
        doubled = sum(1 for n in watcher.copies.values() if n > 1)
        missing = len(produced - watcher.copies.keys())
        print(
            f"{runner[0]}: waves {args.waves} x {args.wave_size} tweets, max_batch_latency_s "
            f"{args.max_batch_latency_s}: produce→visible p50 {percentile(latencies, 0.5):.2f} s, "
            f"p99 {percentile(latencies, 0.99):.2f} s, max {max(latencies):.2f} s"
        )
        print(
            f"restart: wave produced while stopped visible: {visible}; second stop exit "
            f"{restopped.exit_code} after {restopped.stop_s:.1f} s; records produced "
            f"{len(produced)}, missing {missing}, in more than one copy {doubled}"
        )
        ok = stopped.exit_code == 0 and restopped.exit_code == 0 and visible
        return 0 if ok and not missing and not doubled else 1


if __name__ == "__main__":
    sys.exit(main())
