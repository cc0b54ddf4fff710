"""``dataplane compact TABLE``: compact a Delta table's small files, vacuum old ones."""

from __future__ import annotations

import argparse
from typing import Any

from runners.cli.tables import add_storage_option_flag, storage_from_items
from schemas.errors import ConfigError

__all__ = ["add_compact_command"]


def add_compact_command(groups: Any) -> None:
    """Adds ``compact`` to the ``dataplane`` parser."""
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
    from transforms.sinks.compaction import compact_table

    try:
        done = compact_table(
            args.table,
            storage_options=storage_from_items(args.storage_option) or None,
            retention_hours=args.retention_hours,
        )
    except ConfigError as err:
        flag = {"retention_hours": "--retention_hours"}.get(err.name, err.name)
        raise err.naming(flag) from None
    print(
        f"{done.table_uri}: {done.files_before} files → {done.files_after} "
        f"(version {done.version}); {done.files_vacuumed} old files vacuumed"
    )
    return 0
