"""Compacting a Delta table that streaming appends left in many small files.

A streaming sink commits every few seconds, so a table gains a file or more per
commit. :func:`compact_table` rewrites small files into larger ones (delta-rs
``optimize.compact``) and then removes the files no version within the retention
period still needs (``vacuum``). Rows, their record ids and the tables' progress
(txn actions and the frontier in the commit log) are unchanged, so exactly-once
appends and resumes go on as before.

Concurrent writers. An append that meets a compaction's commit fails (our
appends commit with no rebase) and is checked and retried like any conflict. A
compaction rebases over concurrent appends (they only add files) and fails on a
commit that removed a file it rewrote (a merge, a delete): it is then skipped,
:class:`CompactionSkipped`. Two compactions of one table must not overlap:
delta-rs lets the second rebase over the first and both rewritten copies of the
same rows stay in the table. So a compaction first takes the table's
compaction *lease*, a txn action ``dataplane.compaction`` whose version is the
time (ms) the lease ends, committed against the exact snapshot it read (a race
for it has one winner); it skips while another compaction holds it and gives it
back when done. Compactions by tools that ignore the lease are not covered.

:class:`ScheduledCompaction` runs this at most every N seconds from within a sink,
after one of its commits; :class:`CompactOnSchedule` does it after another sink's
commits (the merge sink's).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from schemas.errors import ConfigError, RetryableError
from transforms.checkpoint.table import backoff_after_conflict

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_RETENTION_HOURS",
    "LEASE_TXN",
    "CompactOnSchedule",
    "CompactionOutcome",
    "CompactionSchedule",
    "CompactionSkipped",
    "ScheduledCompaction",
    "compact_table",
    "scheduled_compaction",
    "table_lock",
]

_LOG = logging.getLogger(__name__)

# delta-rs refuses to vacuum files younger than the table's deleted-file retention
# (7 days by default): readers of recent versions may still need them.
DEFAULT_RETENTION_HOURS = 168
LEASE_TXN = "dataplane.compaction"
# Longer than any compaction takes; a compactor that dies holding it delays the
# next compaction of that table by this much at most.
DEFAULT_LEASE_S = 1800.0
_LEASE_ATTEMPTS = 5


class CompactionSkipped(RetryableError):
    """A compaction did not run: another one holds the table's lease, or a concurrent
    commit removed files it was rewriting. Nothing changed; try again later."""


@dataclass(frozen=True)
class CompactionOutcome:
    """What a compaction did to a table."""

    table_uri: str
    files_before: int
    files_after: int
    files_vacuumed: int
    version: int


@dataclass(frozen=True)
class CompactionSchedule:
    """How often a sink compacts its table, and what vacuum keeps.

    Args:
        every_s: compact at most this often (seconds, > 0), after a commit.
        retention_hours: vacuum deletes files unreferenced for longer than this; it
            may not be below the table's ``delta.deletedFileRetentionDuration``
            (7 days by default). Shorter frees disk sooner, but a reader still on a
            version older than that (a long query, time travel, a lagging
            consumer of the table) then finds its files gone.

    >>> CompactionSchedule(every_s=0)
    Traceback (most recent call last):
    ...
    schemas.errors.ConfigError: every_s: must be positive, got 0
    """

    every_s: float
    retention_hours: int = DEFAULT_RETENTION_HOURS

    def __post_init__(self) -> None:
        if not self.every_s > 0:
            raise ConfigError("every_s", f"must be positive, got {self.every_s}")
        if self.retention_hours < 0:
            raise ConfigError("retention_hours", f"must be 0 or more, got {self.retention_hours}")


def compact_table(
    table_uri: str,
    *,
    storage_options: dict[str, str] | None = None,
    retention_hours: int = DEFAULT_RETENTION_HOURS,
    target_size: int | None = None,
    lease_s: float = DEFAULT_LEASE_S,
) -> CompactionOutcome:
    """Compacts small files of a Delta table, then vacuums files older than the retention.

    Args:
        table_uri: path, ``s3://`` or ``gs://`` URI of the table.
        storage_options: delta-rs storage options.
        retention_hours: files unreferenced for longer than this are deleted; below
            the table's own retention (7 days by default) it is refused.
        target_size: bytes per rewritten file (delta-rs default when None).
        lease_s: how long the compaction lease is taken for (see the module doc).

    Raises:
        ConfigError: no table at ``table_uri``, or a retention below the table's.
        CompactionSkipped: another compaction holds the lease, or a concurrent
            commit removed files this one rewrote; the table is unchanged.

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
    if retention_hours < 0:
        raise ConfigError("retention_hours", f"must be 0 or more, got {retention_hours}")
    table = _open(table_uri, storage_options)
    before = len(table.file_uris())
    to_vacuum = _vacuum_candidates(table, retention_hours)  # checks the retention first
    if before < 2 and not to_vacuum:
        return CompactionOutcome(table_uri, before, before, 0, int(table.version()))
    with _lease(table, lease_s):
        _optimize(table, target_size)
        vacuumed = table.vacuum(retention_hours=retention_hours, dry_run=False) if to_vacuum else []
        table.update_incremental()
        after = len(table.file_uris())
    return CompactionOutcome(table_uri, before, after, len(vacuumed), int(table.version()))


def _open(table_uri: str, storage_options: dict[str, str] | None) -> Any:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(table_uri, storage_options=storage_options)
    except TableNotFoundError:
        raise ConfigError("TABLE", f"no Delta table at {table_uri}") from None


def _vacuum_candidates(table: Any, retention_hours: int) -> list[str]:
    from deltalake.exceptions import DeltaError

    try:
        return list(table.vacuum(retention_hours=retention_hours, dry_run=True))
    except DeltaError as err:
        if "retention" not in str(err).lower():
            raise
        raise ConfigError(
            "retention_hours",
            f"{retention_hours} h is below the table's deleted-file retention: {err}",
        ) from None


def _optimize(table: Any, target_size: int | None) -> None:
    from deltalake.exceptions import CommitFailedError

    try:
        table.optimize.compact(target_size=target_size)
    except CommitFailedError as err:
        raise CompactionSkipped(
            f"{table.table_uri}: a concurrent commit changed files the compaction rewrote "
            f"({str(err).splitlines()[0]})"
        ) from None


@contextmanager
def _lease(table: Any, lease_s: float) -> Iterator[None]:
    """Holds the table's compaction lease for the ``with`` block (see the module doc)."""
    from deltalake.exceptions import CommitFailedError

    for attempt in range(1, _LEASE_ATTEMPTS + 1):
        table.update_incremental()
        held_until = table.transaction_version(LEASE_TXN)
        now_ms = int(time.time() * 1000)
        if held_until is not None and held_until > now_ms:
            raise CompactionSkipped(
                f"{table.table_uri}: another compaction holds the lease for "
                f"{(held_until - now_ms) / 1000:.0f} s more"
            )
        try:
            _set_lease(table, now_ms + int(lease_s * 1000), rebase=False)
            break
        except CommitFailedError:  # another commit came first: look again
            backoff_after_conflict(attempt)
    else:
        raise CompactionSkipped(
            f"{table.table_uri}: {_LEASE_ATTEMPTS} commits came first while taking the lease"
        )
    table.update_incremental()  # the compaction plans on the version after the lease
    try:
        yield
    finally:
        _release(table)


def _set_lease(table: Any, until_ms: int, *, rebase: bool) -> None:
    """Commits the lease txn alone; without ``rebase`` only onto the version ``table`` is at."""
    from deltalake import CommitProperties, Transaction

    table.create_write_transaction(
        [],
        mode="append",
        schema=table.schema(),
        partition_by=table.metadata().partition_columns or None,
        commit_properties=CommitProperties(
            app_transactions=[Transaction(LEASE_TXN, until_ms)],
            max_commit_retries=None if rebase else 0,
        ),
    )


def _release(table: Any) -> None:
    from deltalake.exceptions import DeltaError

    try:
        table.update_incremental()
        _set_lease(table, 0, rebase=True)
    except (DeltaError, OSError) as err:  # it ends by itself
        _LOG.warning("%s: compaction lease not given back (%s); it expires", table.table_uri, err)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def table_lock(table_uri: str) -> threading.Lock:
    """The lock this process's sink holds while it commits to or compacts ``table_uri``.

    >>> table_lock("/lake/t") is table_lock("/lake/t")
    True
    """
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(table_uri, threading.Lock())


class ScheduledCompaction:
    """Compacts one table at most every ``schedule.every_s``, when asked after a commit.

    A compaction that is skipped (another one holds the lease, a concurrent commit
    won) or fails for a passing reason (storage) is logged and tried again at the
    next occasion; a wrong retention raises :class:`ConfigError`.

    Example:
        >>> import tempfile, pyarrow as pa
        >>> from deltalake import DeltaTable, write_deltalake
        >>> uri = tempfile.mkdtemp()
        >>> schedule = ScheduledCompaction(uri, CompactionSchedule(every_s=60), clock=lambda: 0)
        >>> for n in range(3):
        ...     write_deltalake(uri, pa.table({"n": [n]}), mode="append")
        >>> schedule.run_if_due() is None  # not 60 s yet
        True
        >>> schedule._clock = lambda: 60
        >>> schedule.run_if_due().files_after
        1
    """

    def __init__(
        self,
        table_uri: str,
        schedule: CompactionSchedule,
        *,
        storage_options: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.table_uri, self.schedule = table_uri, schedule
        self._options, self._clock = storage_options, clock
        self._due_at = clock() + schedule.every_s
        self._runs = Metrics.counter("dataplane.compaction", "compactions")
        self._removed = Metrics.counter("dataplane.compaction", "files_removed")
        self._skipped = Metrics.counter("dataplane.compaction", "compactions_skipped")

    def run_if_due(self) -> CompactionOutcome | None:
        """Compacts if ``every_s`` passed since the last try; the outcome, or None."""
        from deltalake.exceptions import DeltaError

        if self._clock() < self._due_at:
            return None
        try:
            outcome = compact_table(
                self.table_uri,
                storage_options=self._options,
                retention_hours=self.schedule.retention_hours,
            )
        except CompactionSkipped as err:
            _LOG.info("compaction skipped: %s", err)
        except (DeltaError, OSError) as err:
            _LOG.warning("compaction of %s failed, tried again later: %s", self.table_uri, err)
        else:
            self._runs.inc()
            self._removed.inc(max(0, outcome.files_before - outcome.files_after))
            return outcome
        finally:
            self._due_at = self._clock() + self.schedule.every_s
        self._skipped.inc()
        return None


_SCHEDULES: dict[str, ScheduledCompaction] = {}


def scheduled_compaction(
    table_uri: str, schedule: CompactionSchedule, *, storage_options: dict[str, str] | None = None
) -> ScheduledCompaction:
    """This process's compaction schedule for ``table_uri``: one per table.

    Sinks ask for it in ``DoFn.setup``; a runner may set a DoFn up for every bundle
    (Beam's direct runner does), and the schedule must outlive that.

    >>> schedule = CompactionSchedule(every_s=60)
    >>> scheduled_compaction("/lake/t", schedule) is scheduled_compaction("/lake/t", schedule)
    True
    """
    with _LOCKS_GUARD:
        found = _SCHEDULES.get(table_uri)
        if found is None or found.schedule != schedule:
            found = ScheduledCompaction(table_uri, schedule, storage_options=storage_options)
            _SCHEDULES[table_uri] = found
        return found


class _CompactAfterCommitDoFn(beam.DoFn):
    def __init__(
        self, table_uri: str, schedule: CompactionSchedule, options: dict[str, str] | None
    ) -> None:
        self._table_uri, self._schedule, self._options = table_uri, schedule, options
        self._compaction: ScheduledCompaction | None = None

    def setup(self) -> None:
        self._compaction = scheduled_compaction(
            self._table_uri, self._schedule, storage_options=self._options
        )

    def process(self, commit: Any) -> Iterable[CompactionOutcome]:
        assert self._compaction is not None
        with table_lock(self._table_uri):
            outcome = self._compaction.run_if_due()
        if outcome is not None:
            yield outcome


class CompactOnSchedule(beam.PTransform):
    """Compacts a table at most every ``schedule.every_s`` as another sink's commits pass.

    Apply it to a sink's output of one element per commit (e.g.
    :class:`~transforms.sinks.MergeIntoDelta`'s). :class:`~transforms.sinks.WriteToDelta`
    takes a ``compaction=`` schedule itself and compacts between its own commits.

    Returns:
        A PCollection of :class:`CompactionOutcome`, one per compaction run.

    Example:
        >>> import tempfile, apache_beam as beam, pyarrow as pa
        >>> from deltalake import DeltaTable
        >>> from transforms.sinks.delta_merge import MergeIntoDelta
        >>> uri, schema = tempfile.mkdtemp(), pa.schema([("k", pa.int64()), ("v", pa.int64())])
        >>> with beam.Pipeline() as p:
        ...     merged = (p | beam.Create([{"k": k, "v": 0} for k in range(4)])
        ...                 | MergeIntoDelta(uri, schema=schema, keys=["k"], version_column="v",
        ...                                  batch_size=1))
        ...     _ = merged | CompactOnSchedule(uri, CompactionSchedule(every_s=1e-9))
        >>> len(DeltaTable(uri).file_uris()), DeltaTable(uri).to_pyarrow_table().num_rows
        (1, 4)
    """

    def __init__(
        self,
        table_uri: str,
        schedule: CompactionSchedule,
        *,
        storage_options: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        if not table_uri:
            raise ConfigError("table_uri", "expected a path or URI, got nothing")
        self._table_uri, self._schedule, self._options = table_uri, schedule, storage_options

    def expand(self, commits: beam.PCollection) -> beam.PCollection:
        dofn = _CompactAfterCommitDoFn(self._table_uri, self._schedule, self._options)
        return commits | "Compact" >> beam.ParDo(dofn)

    def display_data(self) -> dict[str, Any]:
        return {
            "table_uri": self._table_uri,
            "compact_every_s": self._schedule.every_s,
            "retention_hours": self._schedule.retention_hours,
        }
