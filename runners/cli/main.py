"""The ``dataplane`` command line: one entry point for the library's tools.

Subcommands::

    dataplane schemas list                 subjects, versions, ids and levels
    dataplane schemas check                every subject's history honours its level
    dataplane schemas check --subject S --candidate FILE
                                           a new version would honour it (for CI)
    dataplane schemas serve --port P       the Confluent REST API over the schema files
    dataplane broker [--port P] [--storage S]
                                           the embedded Kafka-protocol broker, until Ctrl-C
    dataplane job-service [--port P]       a Beam job service for PortableRunner, streaming too
    dataplane compact TABLE                compact small files of a Delta table, vacuum old ones
    dataplane quality TABLE --suite FILE   a Great Expectations gate over a table
    dataplane pipelines                    the runnable pipelines, one line each
    dataplane run PIPELINE [flags]         run one (its flags and Beam's; --help lists them)
    dataplane graph PIPELINE --out F.png   a picture of its steps (also .svg)
    dataplane report TABLE --out F.png     events over time and the sentiment distribution
    dataplane dlq replay PIPELINE --from TABLE [--error_type R] -- FLAGS
                                           re-process dead letters, idempotently, marked

Exit status: 0 when all is well, 1 when a check finds problems, 2 for bad usage
or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from runners.cli.dlq import add_dlq_command
from runners.cli.graph import add_graph_command
from runners.cli.pipelines import add_pipeline_commands
from runners.cli.quality import add_quality_command, add_storage_option_flag
from runners.cli.report import add_report_command
from schemas.base import COMPATIBILITY_LEVELS, SchemaFormat, SchemaRegistry
from schemas.codecs import codec_for
from schemas.compatibility import check_candidate, check_subject
from schemas.errors import ConfigError, DataplaneError
from schemas.factory import open_registry
from schemas.registry import LocalFileRegistry

__all__ = ["entry", "main"]

_CANDIDATE_FORMATS: dict[str, SchemaFormat] = {".avsc": "avro", ".json": "json"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataplane", description="beam-dataplane tools: schemas, pipelines, lakes."
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    schemas = groups.add_parser(
        "schemas",
        help="schema registry tools",
        description=("List, check and serve the versioned schemas under schemas/<subject>/."),
    )
    commands = schemas.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")

    listing = commands.add_parser("list", help="subjects, versions, ids and levels")
    _add_registry_flag(listing)
    listing.set_defaults(run=_list)

    check = commands.add_parser(
        "check",
        help="check compatibility; exits 1 when a version breaks its subject's level",
        description="Without --candidate: checks that every version of each subject is "
        "compatible with the versions before it under the subject's level, and that every "
        "schema compiles. With --candidate: checks a proposed next version of --subject.",
    )
    _add_registry_flag(check)
    check.add_argument("--subject", action="append", help="only this subject (repeatable)")
    check.add_argument("--candidate", type=Path, help="a proposed new version (.avsc or .json)")
    check.add_argument(
        "--level", choices=COMPATIBILITY_LEVELS, help="override the subject's own level"
    )
    check.set_defaults(run=_check)

    serve = commands.add_parser(
        "serve",
        help="serve the schema files over the Confluent Schema Registry REST API",
        description="Serves a schema directory so Confluent serializers and deserializers "
        "can use it. Read-only unless --writable.",
    )
    serve.add_argument("--registry", help="schema directory (default: the packaged schemas)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    serve.add_argument("--port", type=int, default=8081, help="port to bind; 0 picks a free one")
    serve.add_argument(
        "--writable",
        action="store_true",
        help="accept new versions: compatibility-checked, then written as schema files",
    )
    serve.set_defaults(run=_serve)
    _add_broker_command(groups)
    _add_job_service_command(groups)
    _add_compact_command(groups)
    add_quality_command(groups)
    add_pipeline_commands(groups)
    add_graph_command(groups)
    add_report_command(groups)
    add_dlq_command(groups)
    return parser


def _add_broker_command(groups: Any) -> None:
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

    from runners.local.services import LocalKafkaBroker, free_port

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
    _until_interrupted(signal.pause, broker.stop)
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


def _add_job_service_command(groups: Any) -> None:
    jobs = groups.add_parser(
        "job-service",
        help="a local Beam job service (PortableRunner) whose streaming jobs fire their timers",
        description="Beam's local job service, running jobs on a FnApiRunner whose timers and "
        "watermarks work while a streaming read runs (see runners/local/job_service.py). Use "
        "--runner=portable --job_endpoint=localhost:PORT --environment_type=LOOPBACK.",
    )
    jobs.add_argument("--port", type=int, default=8099, help="port to listen on; 0: a free one")
    jobs.set_defaults(run=_job_service)


def _job_service(args: argparse.Namespace) -> int:
    from runners.local.job_service import serve

    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        serve(args.port)
    except KeyboardInterrupt:
        pass
    except RuntimeError as err:  # grpc: the port could not be bound
        raise ConfigError("--port", f"cannot listen on localhost:{args.port}: {err}") from None
    return 0


def _add_compact_command(groups: Any) -> None:
    from transforms.sinks.compaction import DEFAULT_RETENTION_HOURS

    compact = groups.add_parser(
        "compact",
        help="compact a Delta table's small files (streaming appends) and vacuum old ones",
        description="Rewrites small files into larger ones (delta-rs optimize), then deletes "
        "files no version within --retention_hours needs (vacuum). Rows, record ids and the "
        "exactly-once progress in the log are unchanged; running pipelines go on.",
    )
    compact.add_argument("table", help="Delta table: path, s3:// or gs://")
    compact.add_argument(
        "--retention_hours",
        type=int,
        default=DEFAULT_RETENTION_HOURS,
        help="delete files unreferenced for longer than this (at least the table's own "
        f"retention; default {DEFAULT_RETENTION_HOURS})",
    )
    add_storage_option_flag(compact)
    compact.set_defaults(run=_compact)


def _compact(args: argparse.Namespace) -> int:
    from runners.cli.quality import storage_from_items
    from transforms.sinks.compaction import compact_table

    try:
        done = compact_table(
            args.table,
            storage_options=storage_from_items(args.storage_option) or None,
            retention_hours=args.retention_hours,
        )
    except ConfigError as err:
        flag = {"retention_hours": "--retention_hours"}.get(err.name, err.name)
        raise ConfigError(flag, str(err).split(": ", 1)[1]) from None
    print(
        f"{done.table_uri}: {done.files_before} files → {done.files_after} "
        f"(version {done.version}); {done.files_vacuumed} old files vacuumed"
    )
    return 0


def _add_registry_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        help="schema directory or Confluent registry URL (default: the packaged schemas)",
    )


def _list(args: argparse.Namespace) -> int:
    registry = open_registry(args.registry)
    for subject in registry.subjects():
        level = registry.compatibility(subject)
        for entry in registry.history(subject):
            print(f"{subject}\tv{entry.version}\tid={entry.schema_id}\t{entry.format}\t{level}")
    return 0


def _check(args: argparse.Namespace) -> int:
    registry = open_registry(args.registry)
    if args.candidate is not None:
        return _check_candidate(registry, args)
    subjects = args.subject or registry.subjects()
    problems: list[str] = []
    for subject in subjects:
        found = _compile_problems(registry, subject) + check_subject(registry, subject, args.level)
        level = args.level or registry.compatibility(subject)
        status = "FAIL" if found else "ok"
        print(f"{status:4} {subject}: {len(registry.versions(subject))} versions, {level}")
        problems += found
    return _report(problems)


def _check_candidate(registry: SchemaRegistry, args: argparse.Namespace) -> int:
    if not args.subject or len(args.subject) != 1:
        print("error: --candidate needs exactly one --subject", file=sys.stderr)
        return 2
    subject, path = args.subject[0], args.candidate
    fmt = _CANDIDATE_FORMATS.get(path.suffix)
    if fmt is None:
        print(f"error: --candidate must end in .avsc or .json, got {path.name}", file=sys.stderr)
        return 2
    try:
        candidate = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        print(f"error: --candidate: cannot read {path}: {err}", file=sys.stderr)
        return 2
    level = args.level or registry.compatibility(subject)
    problems = check_candidate(candidate, fmt, registry.history(subject), level)
    status = "FAIL" if problems else "ok"
    print(f"{status:4} {path} as the next version of {subject} under {level}")
    return _report(problems)


def _compile_problems(registry: SchemaRegistry, subject: str) -> list[str]:
    found = []
    for entry in registry.history(subject):
        try:
            codec_for(entry)
        except Exception as err:  # any parse/compile failure is a finding, not a crash
            found.append(f"{subject} v{entry.version}: does not compile: {err}")
    return found


def _report(problems: list[str]) -> int:
    for problem in problems:
        print(f"  - {problem}")
    return 1 if problems else 0


def _serve(args: argparse.Namespace) -> int:
    from schemas.server import RegistryServer

    registry = LocalFileRegistry(args.registry)
    server = RegistryServer(registry, host=args.host, port=args.port, writable=args.writable)
    mode = "read-write" if args.writable else "read-only"
    print(f"serving {registry.root} at {server.url} ({mode}); Ctrl-C stops", flush=True)
    _until_interrupted(server.serve_forever, server.stop)
    return 0


def _until_interrupted(serve: Callable[[], Any], stop: Callable[[], Any]) -> None:
    """Runs ``serve`` until Ctrl-C or SIGTERM, then ``stop`` (which a second Ctrl-C cannot cut).

    Both handlers are installed here: a process started in the background by a shell
    without job control inherits SIGINT ignored, and Ctrl-C must still stop it.
    """
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        serve()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop()


def _raise_interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``dataplane`` with ``argv`` (the process arguments by default)."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "takes_flags", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = [flag for flag in extra if flag != "--"]
    try:
        return int(args.run(args))
    except DataplaneError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def entry() -> NoReturn:
    """The ``dataplane`` command: :func:`main`, ended without the interpreter's teardown
    (see :mod:`beam_pipelines.launch.exiting`)."""
    from beam_pipelines.launch.exiting import run_and_exit

    run_and_exit(main)


if __name__ == "__main__":
    entry()
