"""beam-dataplane's reusable Beam transforms: sources, validation, featurizers, sinks.

Inside, from the top: :mod:`~transforms.with_dead_letters` (the output + dead-letter
composite); ``sources/``, ``sinks/``, :mod:`~transforms.validate`, ``featurize/`` and
:mod:`~transforms.quality`, which do not import each other; ``checkpoint/`` (what a
table records of its sources, shared by sources and sinks); the dead-letter and
record envelopes, live progress counts and stop requests at the bottom. It imports
only ``schemas`` below it.

The stable public names import from here::

    from transforms import ReadFromKafka, DecodeAndValidate, ScoreSentiment, WriteWithDeadLetters

Each is imported on first use, so ``import transforms`` costs next to nothing and
a name pulls in only its own module (and Beam); the error classes are plain Python.

>>> import transforms
>>> transforms.WriteWithDeadLetters.__module__
'transforms.with_dead_letters'
>>> from transforms import ConfigError, DataplaneError
>>> issubclass(ConfigError, DataplaneError)
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from schemas.errors import (
    ConfigError,
    DataplaneError,
    RetryableError,
    SinkCommitError,
    SourceUnavailableError,
)

if TYPE_CHECKING:
    from transforms.deadletter import DeadLetter
    from transforms.featurize import (
        CheckBounds,
        CleanText,
        ExtractEventTime,
        Geohash,
        ScoreSentiment,
        WindowedAggregate,
    )
    from transforms.record import Header, Record, make_record
    from transforms.sinks import (
        MergeIntoDelta,
        MissingCoordinatesError,
        ResumeFrom,
        RowsDoNotFitError,
        TableRef,
        TableSchemaError,
        WriteDeadLettersToDelta,
        WriteToDelta,
        WriteToPartitionedParquet,
        arrow_schema_of,
    )
    from transforms.sources import (
        ReadDeadLetters,
        ReadFromFiles,
        ReadFromKafka,
        ReadFromKinesis,
        ReadFromPubSub,
        read_from_uri,
    )
    from transforms.validate import DecodeAndValidate
    from transforms.with_dead_letters import WriteResult, WriteWithDeadLetters

# Public name -> the module that defines it (imported on first use).
_LAZY = {
    "ReadFromKafka": "transforms.sources.kafka",
    "ReadFromKinesis": "transforms.sources.kinesis",
    "ReadFromPubSub": "transforms.sources.pubsub",
    "ReadFromFiles": "transforms.sources.files",
    "ReadDeadLetters": "transforms.sources.deadletters",
    "read_from_uri": "transforms.sources.uri",
    "Record": "transforms.record",
    "Header": "transforms.record",
    "make_record": "transforms.record",
    "DeadLetter": "transforms.deadletter",
    "DecodeAndValidate": "transforms.validate",
    "CleanText": "transforms.featurize.text",
    "ScoreSentiment": "transforms.featurize.sentiment",
    "Geohash": "transforms.featurize.geo",
    "ExtractEventTime": "transforms.featurize.event_time",
    "CheckBounds": "transforms.featurize.bounds",
    "WindowedAggregate": "transforms.featurize.windowed",
    "WriteToDelta": "transforms.sinks.delta",
    "WriteDeadLettersToDelta": "transforms.sinks.delta",
    "MissingCoordinatesError": "transforms.sinks.delta",
    "RowsDoNotFitError": "transforms.sinks.delta",
    "TableSchemaError": "transforms.sinks.delta",
    "WriteWithDeadLetters": "transforms.with_dead_letters",
    "WriteResult": "transforms.with_dead_letters",
    "MergeIntoDelta": "transforms.sinks.delta_merge",
    "WriteToPartitionedParquet": "transforms.sinks.parquet",
    "ResumeFrom": "transforms.checkpoint.log",
    "TableRef": "transforms.checkpoint.log",
    "arrow_schema_of": "transforms.sinks.arrow_schema",
}

__all__ = [
    "CheckBounds",
    "CleanText",
    "ConfigError",
    "DataplaneError",
    "DeadLetter",
    "DecodeAndValidate",
    "ExtractEventTime",
    "Geohash",
    "Header",
    "MergeIntoDelta",
    "MissingCoordinatesError",
    "ReadDeadLetters",
    "ReadFromFiles",
    "ReadFromKafka",
    "ReadFromKinesis",
    "ReadFromPubSub",
    "Record",
    "ResumeFrom",
    "RetryableError",
    "RowsDoNotFitError",
    "ScoreSentiment",
    "SinkCommitError",
    "SourceUnavailableError",
    "TableRef",
    "TableSchemaError",
    "WindowedAggregate",
    "WriteDeadLettersToDelta",
    "WriteResult",
    "WriteToDelta",
    "WriteToPartitionedParquet",
    "WriteWithDeadLetters",
    "arrow_schema_of",
    "make_record",
    "read_from_uri",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'transforms' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next look-up is a plain one
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
