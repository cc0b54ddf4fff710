"""Sinks: idempotent writers to Delta Lake (append and merge) and partitioned Parquet."""

from transforms.sinks.delta import WriteDeadLettersToDelta, WriteToDelta
from transforms.sinks.delta_commit import CommitOutcome, DeltaCommitter
from transforms.sinks.delta_merge import MergeCommitter, MergeIntoDelta, MergeOutcome
from transforms.sinks.parquet import WriteToPartitionedParquet
from transforms.sinks.progress_log import ResumeFrom, TableRef

__all__ = [
    "CommitOutcome",
    "DeltaCommitter",
    "MergeCommitter",
    "MergeIntoDelta",
    "MergeOutcome",
    "ResumeFrom",
    "TableRef",
    "WriteDeadLettersToDelta",
    "WriteToDelta",
    "WriteToPartitionedParquet",
]
