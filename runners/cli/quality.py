"""``dataplane quality TABLE --suite FILE``: a Great Expectations gate over a whole table.

Exits 0 when the table meets every expectation of the suite, 1 when it does not
(the failing expectations are listed), 2 for bad usage or an unreadable table.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from runners.cli.tables import add_storage_option_flag, read_table_arg
from transforms.quality import QualityReport, SuiteRunner, read_suite

__all__ = ["add_quality_command", "missing_columns"]


def add_quality_command(groups: Any) -> None:
    """Adds the ``quality`` subcommand to the ``dataplane`` parser."""
    quality = groups.add_parser(
        "quality",
        help="check a Delta table or Parquet directory against a Great Expectations suite",
        description="Validates the whole table against a suite file (GX JSON). Exit status "
        "0: it passes; 1: it fails (failures listed); 2: bad usage or unreadable table.",
    )
    quality.add_argument("table", help="Delta table or Parquet directory: path, s3:// or gs://")
    quality.add_argument("--suite", required=True, help="the suite's JSON file")
    quality.add_argument(
        "--format",
        choices=("auto", "delta", "parquet"),
        default="auto",
        help="auto: Delta when the table has a _delta_log, else Hive-partitioned Parquet",
    )
    quality.add_argument("--version", type=int, help="a Delta table version (default: latest)")
    add_storage_option_flag(quality)
    quality.set_defaults(run=_run_quality)


def _run_quality(args: argparse.Namespace) -> int:
    runner = SuiteRunner(args.suite)
    table = read_table_arg(args.table, args.storage_option, fmt=args.format, version=args.version)
    report = runner.validate(table)
    _print(args.table, report)
    missing = missing_columns(read_suite(args.suite), table.column_names)
    if missing and not report.success:
        names = ", ".join(repr(c) for c in missing)
        print(
            f"missing column{'s' if len(missing) > 1 else ''} {names}: the suite checks "
            f"{'them' if len(missing) > 1 else 'it'}, the table has only "
            f"{', '.join(table.column_names) or 'no columns'}"
        )
    return 0 if report.success else 1


def missing_columns(suite: dict[str, Any], columns: list[str]) -> list[str]:
    """The columns ``suite``'s expectations name that ``columns`` lacks, in suite order.

    >>> suite = {"expectations": [{"type": "t", "kwargs": {"column": "speed"}},
    ...                           {"type": "u", "kwargs": {"column_list": ["id", "ts"]}}]}
    >>> missing_columns(suite, ["id", "value"])
    ['speed', 'ts']
    """
    named: dict[str, None] = {}
    for expectation in suite["expectations"]:
        kwargs = expectation.get("kwargs") or {}
        for key in ("column", "column_A", "column_B"):
            if isinstance(kwargs.get(key), str):
                named[kwargs[key]] = None
        named.update(
            dict.fromkeys(c for c in kwargs.get("column_list") or [] if isinstance(c, str))
        )
    have = set(columns)
    return [name for name in named if name not in have]


def _print(uri: str, report: QualityReport, console: Console | None = None) -> None:
    console = console or Console()
    verdict = "[green]passed[/]" if report.success else "[red]FAILED[/]"
    console.print(
        f"{uri}: suite {report.suite} {verdict} · {report.rows:,} rows · "
        f"{report.evaluated - len(report.failures)}/{report.evaluated} expectations met"
    )
    if report.failures:
        table = Table("expectation", "columns", "unexpected rows")
        for failure in report.failures:
            count = "" if failure.unexpected_count is None else f"{failure.unexpected_count:,}"
            table.add_row(failure.expectation, failure.columns, count)
        console.print(table)
