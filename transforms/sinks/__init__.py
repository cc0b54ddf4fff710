"""Sinks: idempotent writers to Delta Lake (append and merge) and partitioned Parquet."""

from transforms.checkpoint.log import ResumeFrom, TableRef
from transforms.sinks.arrow_schema import arrow_schema_of
from transforms.sinks.delta import (
    MissingCoordinatesError,
    RowsDoNotFitError,
    TableSchemaError,
    WriteDeadLettersToDelta,
    WriteToDelta,
)
from transforms.sinks.delta_commit import CommitOutcome, DeltaCommitter
from transforms.sinks.delta_merge import MergeCommitter, MergeIntoDelta, MergeOutcome
from transforms.sinks.parquet import WriteToPartitionedParquet

__all__ = [
    "CommitOutcome",
    "DeltaCommitter",
    "MergeCommitter",
    "MergeIntoDelta",
    "MergeOutcome",
    "MissingCoordinatesError",
    "ResumeFrom",
    "RowsDoNotFitError",
    "TableRef",
    "TableSchemaError",
    "WriteDeadLettersToDelta",
    "WriteToDelta",
    "WriteToPartitionedParquet",
    "arrow_schema_of",
]
