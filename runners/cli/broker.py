"""``dataplane broker``: the embedded Kafka-protocol broker (Tansu) on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
from typing import Any

from runners.cli.serving import until_interrupted
from schemas.errors import ConfigError

__all__ = ["add_broker_command", "broker_storage"]


def add_broker_command(groups: Any) -> None:
    """Adds ``broker`` to the ``dataplane`` parser."""
    broker = groups.add_parser(
        "broker",
        help="run the embedded Kafka-protocol broker (Tansu) on 127.0.0.1 until Ctrl-C",
        description="A local Kafka-protocol broker for trying the pipelines: on 127.0.0.1, "
        "its log in memory unless --storage says otherwise, a topic created when a producer "
        "first writes to it (a read never creates one). Ctrl-C or SIGTERM stops it.",
    )
    broker.add_argument(
        "--port", type=int, default=9092, help="port to listen on (default 9092); 0: a free one"
    )
    broker.add_argument(
        "--storage",
        default="memory",
        metavar="memory|s3://BUCKET/|postgres://...",
        help="where the broker keeps its log: memory (default; gone when it stops), an S3 "
        "bucket (endpoint and keys from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...; topics "
        "survive a restart) or PostgreSQL",
    )
    broker.set_defaults(run=_broker)


def _broker(args: argparse.Namespace) -> int:
    import socket

    from runners.local.broker import LocalKafkaBroker
    from runners.local.process import free_port

    port = args.port or free_port()
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise ConfigError("--port", f"127.0.0.1:{port} is in use; pick another or 0")
    engine, environment = broker_storage(args.storage)
    broker = LocalKafkaBroker(port=port, storage_engine=engine, storage_environment=environment)
    broker.start()
    where = "in memory" if engine.startswith("memory:") else f"log in {_shown(engine)}"
    print(
        f"Kafka-protocol broker at {broker.bootstrap_servers} ({where}); Ctrl-C stops it",
        flush=True,
    )
    until_interrupted(signal.pause, broker.stop)
    print("broker stopped", flush=True)
    return 0


def broker_storage(storage: str) -> tuple[str, dict[str, str]]:
    """``--storage`` as Tansu's storage engine URL and the environment it needs.

    S3 settings come from the usual AWS variables; ``AWS_ENDPOINT_URL`` (boto's name) is
    passed on as the ``AWS_ENDPOINT`` Tansu reads, plain HTTP allowed for a local endpoint.

    >>> broker_storage("memory")
    ('memory://tansu/', {})
    >>> broker_storage("/var/kafka")
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: --storage: expected memory, s3://BUCKET/ or postgres://..., \
got a path; the embedded broker (Tansu 0.6) keeps no log in a local directory
    """
    scheme = storage.partition("://")[0].lower() if "://" in storage else ""
    if storage == "memory" or scheme == "memory":
        return "memory://tansu/", {}
    if scheme == "s3":
        bucket = storage[len("s3://") :].strip("/")
        if not bucket:
            raise ConfigError("--storage", "expected s3://BUCKET/, got no bucket")
        environment = {}
        endpoint = os.environ.get("AWS_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            environment["AWS_ENDPOINT"] = endpoint
            if endpoint.startswith("http://"):
                environment["AWS_ALLOW_HTTP"] = "true"
        return f"s3://{bucket}/", environment
    if scheme in ("postgres", "postgresql"):
        return storage, {}
    got = "a path" if not scheme else f"{scheme}://"
    raise ConfigError(
        "--storage",
        f"expected memory, s3://BUCKET/ or postgres://..., got {got}; the embedded broker "
        "(Tansu 0.6) keeps no log in a local directory",
    )


def _shown(url: str) -> str:
    """``url`` without its user and password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"
