"""Write synthetic data to Kafka, Kinesis, Pub/Sub or files (the CLI over the feeds).

    python -m beam_pipelines.generate tweets --bootstrap 127.0.0.1:9092 --topic tweets \\
        --count 10000 --bad-ratio 0.05 [--framing confluent]
    python -m beam_pipelines.generate telemetry --bootstrap 127.0.0.1:9092 --topic telemetry \\
        --count 10000 --vehicles 50 --versions 1,2 --max-delay-ms 30000 --late-ratio 0.01
    python -m beam_pipelines.generate tweets --to file:///tmp/tweets.jsonl --count 1000

Generators and producers live in :mod:`beam_pipelines.feeds`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.telemetry import generate_telemetry
from beam_pipelines.feeds.tweets import GeneratedMessage, generate_tweets
from schemas.errors import DataplaneError
from schemas.registry import LocalFileRegistry

__all__ = ["main"]


def _common_flags(parser: argparse.ArgumentParser, count: int, bad_ratio: float) -> None:
    parser.add_argument(
        "--to",
        help="destination URI: kafka://HOST:PORT/TOPIC, kinesis://STREAM[?endpoint=URL], "
        "pubsub://projects/P/topics/T or file:///PATH.jsonl",
    )
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers HOST:PORT (with --topic)")
    parser.add_argument("--topic", help="Kafka topic (with --bootstrap)")
    parser.add_argument("--count", type=int, default=count)
    parser.add_argument("--bad-ratio", type=float, default=bad_ratio)
    parser.add_argument("--partitions", type=int, default=3, help="when the topic is created")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--registry", help="schema directory for framed values (default: the packaged schemas)"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m beam_pipelines.generate")
    sub = parser.add_subparsers(dest="dataset", required=True)
    tweets = sub.add_parser("tweets", help="synthetic tweets with a share of malformed records")
    _common_flags(tweets, 10_000, 0.05)
    tweets.add_argument(
        "--framing",
        choices=("none", "confluent"),
        default="none",
        help="plain JSON, or JSON Schema values in the Confluent wire format",
    )
    telemetry = sub.add_parser(
        "telemetry", help="vehicle readings, Avro in the Confluent wire format"
    )
    _common_flags(telemetry, 10_000, 0.0)
    telemetry.add_argument("--vehicles", type=int, default=20)
    telemetry.add_argument(
        "--versions", default="1,2", help="vehicle_telemetry versions to write with, in turn"
    )
    telemetry.add_argument("--interval-ms", type=int, default=1000)
    telemetry.add_argument(
        "--physics-bad-ratio", type=float, default=0.0, help="share of impossible readings"
    )
    telemetry.add_argument(
        "--max-delay-ms", type=int, default=0, help="readings arrive up to this late (out of order)"
    )
    telemetry.add_argument("--late-ratio", type=float, default=0.0, help="share of late readings")
    telemetry.add_argument(
        "--late-delay-ms", type=int, default=900_000, help="how late the late readings arrive"
    )
    return parser


def _messages(args: argparse.Namespace) -> Iterable[GeneratedMessage]:
    registry = LocalFileRegistry(args.registry)
    if args.dataset == "telemetry":
        return generate_telemetry(
            args.count,
            vehicles=args.vehicles,
            versions=[int(v) for v in args.versions.split(",")],
            bad_ratio=args.bad_ratio,
            interval_ms=args.interval_ms,
            physics_bad_ratio=args.physics_bad_ratio,
            max_delay_ms=args.max_delay_ms,
            late_ratio=args.late_ratio,
            late_delay_ms=args.late_delay_ms,
            seed=args.seed,
            registry=registry,
        )
    framed = args.framing == "confluent"
    return generate_tweets(
        args.count,
        bad_ratio=args.bad_ratio,
        seed=args.seed,
        schema=registry.latest("tweet") if framed else None,
        other=registry.latest("vehicle_telemetry") if framed else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    target = args.to or (f"kafka://{args.bootstrap}/{args.topic}" if args.bootstrap else None)
    if not target or (not args.to and not args.topic):
        parser.error("give --to URI, or --bootstrap and --topic")
    try:
        kinds = publish(target, _messages(args), partitions=args.partitions)
    except (DataplaneError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"produced {sum(kinds.values())} messages to {target}: {dict(sorted(kinds.items()))}")
    return 0


if __name__ == "__main__":
    from beam_pipelines.launch.exiting import run_and_exit

    run_and_exit(main)
