"""The demo behind ``make demo``: a local broker, 10k tweets, the pipeline, a summary.

Needs no cloud account: an embedded Kafka-protocol broker on a free loopback port
and Delta tables under ./demo-output/.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from beam_pipelines import sentiment
from beam_pipelines.feeds.kafka import produce
from beam_pipelines.feeds.tweets import generate_tweets
from runners.local.broker import LocalKafkaBroker

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runners.demo")
    parser.add_argument("--count", type=int, default=10_000, help="tweets to generate")
    parser.add_argument("--bad-ratio", type=float, default=0.05)
    parser.add_argument("--lake", default="demo-output", help="where the Delta tables go")
    args = parser.parse_args(argv)
    console = Console()
    lake = Path(args.lake).resolve() / time.strftime("run-%Y%m%d-%H%M%S")
    with LocalKafkaBroker() as broker:
        console.print(f"[bold]broker[/] Tansu on {broker.bootstrap_servers} (pid {broker.pid})")
        kinds = produce(
            broker.bootstrap_servers,
            "tweets",
            generate_tweets(args.count, bad_ratio=args.bad_ratio),
        )
        console.print(
            f"[bold]produced[/] {sum(kinds.values()):,} messages: {dict(sorted(kinds.items()))}"
        )
        summary = sentiment.run(
            [
                f"--source=kafka://{broker.bootstrap_servers}/tweets",
                f"--output={lake}/tweets",
                f"--dlq={lake}/dead_letters",
                "--bounded",
                "--runner=direct",
            ],
            show_progress=True,
        )
    summary.print(console)
    console.print("[bold]broker stopped[/]; tables kept under", str(lake))
    produced = sum(kinds.values())
    accounted = summary.valid + summary.dead_letters
    if accounted != produced:
        console.print(f"[red]records in ({produced}) != valid + dead letters ({accounted})[/]")
        return 1
    return 0


if __name__ == "__main__":
    from beam_pipelines.launch.exiting import run_and_exit

    run_and_exit(main)
