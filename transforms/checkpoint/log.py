"""Where a table's source checkpoint lives: the commit info of the commit that recorded it.

Each of our commits stores the writer's :class:`~transforms.checkpoint.frontier.Checkpoint`
in its commit info and, in the same commit, a txn action ``<app_id>.progress``
whose version is that commit's table version. A reader finds the latest checkpoint
in two small reads: the txn version from the snapshot, then that one log entry.
(Kinesis sequence numbers do not fit a txn version, so positions cannot be txn
versions themselves.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deltalake import DeltaTable

from transforms.checkpoint.frontier import Checkpoint
from transforms.checkpoint.storage import arrow_filesystem
from transforms.checkpoint.table import TableHandle

__all__ = [
    "CHECKPOINT_KEY",
    "CheckpointLog",
    "ResumeFrom",
    "TableRef",
    "checkpoint_txn",
    "read_combined_checkpoint",
]

_LOG = logging.getLogger(__name__)
# The on-disk names (this key, the ``progress`` entry, the ``<app_id>.progress`` txn)
# keep the word tables were first written with.
CHECKPOINT_KEY = "dataplane.progress"


def checkpoint_txn(app_id: str) -> str:
    """The txn action whose version points at the commit holding ``app_id``'s checkpoint.

    >>> checkpoint_txn("sentiment")
    'sentiment.progress'
    """
    return f"{app_id}.progress"


@dataclass(frozen=True)
class TableRef:
    """A Delta table one pipeline output writes, and the app id its commits carry."""

    uri: str
    app_id: str


class CheckpointLog:
    """Reads (and caches by table version) the checkpoint one app id recorded in one table."""

    def __init__(self, ref: TableRef, storage_options: Mapping[str, str] | None) -> None:
        self.ref = ref
        self._options = dict(storage_options or {})
        self._handle = TableHandle(ref.uri, self._options or None)
        self._cached: tuple[int, Checkpoint] | None = None

    def latest(self) -> Checkpoint:
        """The checkpoint as of the table's latest version (empty when there is none yet)."""
        return self.at(self._handle.current())

    def at(self, table: DeltaTable | None) -> Checkpoint:
        """The checkpoint as of ``table``'s loaded version."""
        if table is None:
            return Checkpoint()
        version = int(table.version())
        if self._cached is not None and self._cached[0] == version:
            return self._cached[1]
        pointer = table.transaction_version(checkpoint_txn(self.ref.app_id))
        checkpoint = Checkpoint() if pointer is None else self._read(int(pointer))
        self._cached = (version, checkpoint)
        return checkpoint

    def remember(self, version: int, checkpoint: Checkpoint) -> None:
        """Records what a commit of ours just wrote at ``version``."""
        self._cached = (version, checkpoint)

    def commit_metadata(self, checkpoint: Checkpoint) -> dict[str, Any]:
        """The commit-info entries that record ``checkpoint``."""
        return {CHECKPOINT_KEY: {"app_id": self.ref.app_id, "progress": checkpoint.to_json()}}

    def _read(self, version: int) -> Checkpoint:
        info = _commit_info(self.ref.uri, version, self._options)
        entry = info.get(CHECKPOINT_KEY) if info else None
        if not isinstance(entry, dict) or entry.get("app_id") != self.ref.app_id:
            _LOG.warning(
                "no checkpoint of %s in %s version %d (log entry cleaned up?); "
                "its sources restart from their configured positions",
                self.ref.app_id,
                self.ref.uri,
                version,
            )
            return Checkpoint()
        return Checkpoint.from_json(entry.get("progress"))


def _commit_info(uri: str, version: int, options: Mapping[str, str]) -> dict[str, Any] | None:
    filesystem, root = arrow_filesystem(uri, options)
    path = f"{root}/_delta_log/{version:020d}.json"
    try:
        with filesystem.open_input_stream(path) as stream:
            text = stream.read().decode("utf-8")
    except (FileNotFoundError, OSError):
        return None
    for line in text.splitlines():
        if '"commitInfo"' in line:
            found: dict[str, Any] = json.loads(line)["commitInfo"]
            return found
    return None


def read_combined_checkpoint(
    tables: Iterable[TableRef], storage_options: Mapping[str, str] | None
) -> Checkpoint:
    """What a pipeline's tables together prove committed: its sources resume after it."""
    return Checkpoint.combined(CheckpointLog(ref, storage_options).latest() for ref in tables)


@dataclass(frozen=True)
class ResumeFrom:
    """Where a source resumes: after the frontier its pipeline's tables recorded.

    Give the same instance to the source (``resume_from=``) that the pipeline's
    Delta sinks write with; the source asks it once, when it plans its read.

    Example:
        >>> resume = ResumeFrom((TableRef("/tmp/nowhere/out", "demo"),))
        >>> resume.frontiers("kafka", "tweets")
        {}
    """

    tables: tuple[TableRef, ...]
    storage_options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(
        cls, tables: Iterable[TableRef], storage_options: Mapping[str, str] | None
    ) -> ResumeFrom:
        return cls(tuple(tables), tuple(sorted((storage_options or {}).items())))

    def frontiers(self, source: str, stream: str) -> dict[str, str]:
        """Partition -> the last position before which everything is committed."""
        checkpoint = read_combined_checkpoint(self.tables, dict(self.storage_options))
        return {
            partition: p.frontier
            for (kind, name, partition), p in checkpoint.partitions.items()
            if kind == source and name == stream and p.frontier is not None
        }
