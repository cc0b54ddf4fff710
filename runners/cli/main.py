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
import sys
from collections.abc import Sequence
from typing import NoReturn

from runners.cli.broker import add_broker_command
from runners.cli.compact import add_compact_command
from runners.cli.dlq import add_dlq_command
from runners.cli.graph import add_graph_command
from runners.cli.job_service import add_job_service_command
from runners.cli.pipelines import add_pipeline_commands
from runners.cli.quality import add_quality_command
from runners.cli.registry import add_schemas_command
from runners.cli.report import add_report_command
from schemas.errors import DataplaneError

__all__ = ["entry", "main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dataplane", description="beam-dataplane tools: schemas, pipelines, lakes."
    )
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    add_schemas_command(groups)
    add_broker_command(groups)
    add_job_service_command(groups)
    add_compact_command(groups)
    add_quality_command(groups)
    add_pipeline_commands(groups)
    add_graph_command(groups)
    add_report_command(groups)
    add_dlq_command(groups)
    return parser


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
