"""``dataplane schemas list|check|serve``: the versioned schemas under schemas/<subject>/."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runners.cli.serving import until_interrupted
from schemas.base import COMPATIBILITY_LEVELS, SchemaFormat, SchemaRegistry
from schemas.codecs import codec_for
from schemas.compatibility import check_candidate, check_subject
from schemas.factory import open_registry
from schemas.registry import LocalFileRegistry

__all__ = ["add_schemas_command"]

_CANDIDATE_FORMATS: dict[str, SchemaFormat] = {".avsc": "avro", ".json": "json"}


def add_schemas_command(groups: Any) -> None:
    """Adds ``schemas list``, ``check`` and ``serve`` to the ``dataplane`` parser."""
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
    until_interrupted(server.serve_forever, server.stop)
    return 0
