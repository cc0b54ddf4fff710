"""Compacting a Delta table that streaming appends left in many small files.

A streaming sink commits every few seconds, so a table gains a file or more per
commit. :func:`compact_table` rewrites small files into larger ones (delta-rs
``optimize.compact``) and then removes the files no version within the retention
period still needs (``vacuum``). Rows, their record ids and the tables' progress
(txn actions and the frontier in the commit log) are unchanged, so exactly-once
appends and resumes go on as before; a writer that meets the compaction's commit
retries as on any conflict.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.errors import ConfigError

__all__ = ["DEFAULT_RETENTION_HOURS", "CompactionOutcome", "compact_table"]

# delta-rs refuses to vacuum files younger than the table's deleted-file retention
# (7 days by default): readers of recent versions may still need them.
DEFAULT_RETENTION_HOURS = 168


@dataclass(frozen=True)
class CompactionOutcome:
    """What a compaction did to a table."""

    table_uri: str
    files_before: int
    files_after: int
    files_vacuumed: int
    version: int


def compact_table(
    table_uri: str,
    *,
    storage_options: dict[str, str] | None = None,
    retention_hours: int = DEFAULT_RETENTION_HOURS,
    target_size: int | None = None,
) -> CompactionOutcome:
    """Compacts small files of a Delta table, then vacuums files older than the retention.

    Args:
        table_uri: path, ``s3://`` or ``gs://`` URI of the table.
        storage_options: delta-rs storage options.
        retention_hours: files unreferenced for longer than this are deleted; below
            the table's own retention (7 days by default) it is refused.
        target_size: bytes per rewritten file (delta-rs default when None).

    Raises:
        ConfigError: no table at ``table_uri``, or a retention below the table's.

    Example:
        >>> import tempfile, pyarrow as pa
        >>> from deltalake import DeltaTable, write_deltalake
        >>> uri = tempfile.mkdtemp()
        >>> for n in range(3):
        ...     write_deltalake(uri, pa.table({"n": [n]}), mode="append")
        >>> outcome = compact_table(uri)
        >>> outcome.files_before, outcome.files_after, DeltaTable(uri).to_pyarrow_table().num_rows
        (3, 1, 3)
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import DeltaError, TableNotFoundError

    if retention_hours < 0:
        raise ConfigError("retention_hours", f"must be 0 or more, got {retention_hours}")
    try:
        table = DeltaTable(table_uri, storage_options=storage_options)
    except TableNotFoundError:
        raise ConfigError("TABLE", f"no Delta table at {table_uri}") from None
    before = len(table.file_uris())
    table.optimize.compact(target_size=target_size)
    try:
        vacuumed = table.vacuum(retention_hours=retention_hours, dry_run=False)
    except DeltaError as err:
        if "retention" not in str(err).lower():
            raise
        raise ConfigError(
            "retention_hours",
            f"{retention_hours} h is below the table's deleted-file retention: {err}",
        ) from None
    table.update_incremental()
    return CompactionOutcome(
        table_uri, before, len(table.file_uris()), len(vacuumed), int(table.version())
    )
