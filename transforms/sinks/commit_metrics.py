"""What one Delta commit adds to this process's progress (see :mod:`transforms.progress`).

Per table: commits and their duration, rows committed (new rows only, so the
count matches the table), rows a retry found already committed or a merge updated, dead letters
by reason, and the seconds from each committed row's source timestamp (its
``_event_time``: the Kafka message timestamp, the Kinesis arrival time or the
Pub/Sub publish time, unless the pipeline sets an event time of its own) to the
commit that made it visible.
"""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa

from transforms.progress import COMMIT_SECONDS_BUCKETS, LATENCY_BUCKETS, note, observe
from transforms.sinks.delta_commit import CommitOutcome

__all__ = ["UNATTRIBUTED", "note_commit", "note_merge", "table_label"]

# The reason label of dead letters committed from a batch that a retry had partly
# committed already (which of its rows were new is not known here).
UNATTRIBUTED = "unattributed"


def note_commit(table_uri: str, batch: pa.Table, outcome: CommitOutcome, seconds: float) -> None:
    """Counts one commit of ``batch`` (rows as :func:`~transforms.sinks.delta.rows_to_arrow`
    makes them) to ``table_uri`` that took ``seconds`` and did ``outcome``."""
    table = table_label(table_uri)
    observe("commit_seconds", [seconds], bounds=COMMIT_SECONDS_BUCKETS, table=table)
    if outcome.version is not None:
        note("commits", table=table)
    note("rows_committed", outcome.rows_written, table=table)
    note("rows_already_committed", outcome.rows_already_committed, table=table)
    if outcome.rows_written == 0:
        return
    if "error_type" in batch.column_names:
        for reason, count in _reasons(batch, outcome).items():
            note("dead_letters_committed", count, table=table, reason=reason)
    now_ms = time.time() * 1000
    event_ms = batch.column("_event_time").cast(pa.int64()).to_pylist()
    latencies = [max(now_ms - ms, 0.0) / 1000 for ms in event_ms if ms is not None]
    observe("commit_latency_seconds", latencies, bounds=LATENCY_BUCKETS, table=table)


def note_merge(
    table_uri: str, *, version: int | None, inserted: int, updated: int, seconds: float
) -> None:
    """Counts one upsert (:mod:`transforms.sinks.delta_merge`) into ``table_uri``: its
    inserted rows are committed rows, its updated rows are counted apart."""
    table = table_label(table_uri)
    observe("commit_seconds", [seconds], bounds=COMMIT_SECONDS_BUCKETS, table=table)
    if version is not None:
        note("commits", table=table)
    note("rows_committed", inserted, table=table)
    note("rows_updated", updated, table=table)


def _reasons(batch: pa.Table, outcome: CommitOutcome) -> Counter[str]:
    if outcome.rows_already_committed:
        return Counter({UNATTRIBUTED: outcome.rows_written})
    return Counter(str(r) for r in batch.column("error_type").to_pylist())


def table_label(uri: str) -> str:
    """A table's URI as a label value: any user and password in it left out.

    >>> table_label("s3://key:secret@bucket/lake/t"), table_label("/lake/t")
    ('s3://bucket/lake/t', '/lake/t')
    """
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
