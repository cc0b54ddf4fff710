"""Sinks: idempotent writers to Delta Lake (and, later, Parquet)."""

from transforms.sinks.delta import WriteDeadLettersToDelta, WriteToDelta
from transforms.sinks.delta_commit import CommitOutcome, DeltaCommitter

__all__ = ["CommitOutcome", "DeltaCommitter", "WriteDeadLettersToDelta", "WriteToDelta"]
