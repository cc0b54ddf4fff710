"""The TABLE argument of the table commands (quality, report, compact, dlq): flags and reading.

A table is a Delta table or a Hive-partitioned Parquet directory, on a path, s3:// or gs://;
``--storage_option KEY=VALUE`` items give the store's endpoint and keys.
"""

from __future__ import annotations

import argparse

import pyarrow as pa

from schemas.errors import ConfigError
from transforms.checkpoint.storage import arrow_filesystem, normalised_options

__all__ = ["add_storage_option_flag", "read_any_table", "read_table_arg", "storage_from_items"]


def add_storage_option_flag(parser: argparse.ArgumentParser) -> None:
    """Adds the repeatable ``--storage_option KEY=VALUE`` flag of the table commands."""
    parser.add_argument(
        "--storage_option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="storage option, e.g. AWS_ENDPOINT_URL=http://127.0.0.1:5000 (repeatable)",
    )


def storage_from_items(items: list[str]) -> dict[str, str]:
    """``--storage_option KEY=VALUE`` items as normalised delta-rs storage options."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            # The item is not shown: without its '=' it may be a bare secret value.
            raise ConfigError(
                "--storage_option",
                f"expected KEY=VALUE, got an item of {len(item)} characters without a KEY=",
            )
        options[key] = value
    return normalised_options(options)


def read_any_table(
    uri: str, *, fmt: str = "auto", version: int | None = None, storage: dict[str, str]
) -> pa.Table:
    """A Delta table (at ``version``) or a Hive-partitioned Parquet directory, as Arrow."""
    from deltalake import DeltaTable

    is_delta = fmt == "delta" or (
        fmt == "auto" and DeltaTable.is_deltatable(uri, storage_options=storage or None)
    )
    if is_delta:
        return DeltaTable(uri, version=version, storage_options=storage or None).to_pyarrow_table()
    if version is not None:
        raise ConfigError("--version", "applies to Delta tables only")
    import pyarrow.dataset as ds

    filesystem, path = arrow_filesystem(uri, storage)
    return ds.dataset(path, filesystem=filesystem, partitioning="hive").to_table()


def read_table_arg(
    uri: str, storage_items: list[str], *, fmt: str = "auto", version: int | None = None
) -> pa.Table:
    """A TABLE argument read with ``--storage_option`` items; ConfigError when unreadable."""
    try:
        storage = storage_from_items(storage_items)
        return read_any_table(uri, fmt=fmt, version=version, storage=storage)
    except ConfigError:
        raise
    except (OSError, ValueError) as err:
        raise ConfigError("TABLE", f"cannot read {uri}: {err}") from None
