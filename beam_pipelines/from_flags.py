"""The steps every pipeline builds the same way from its flags: the read's settings, the decode.

>>> from apache_beam.options.pipeline_options import PipelineOptions
>>> from beam_pipelines.launch.options import SourceOptions
>>> sorted(read_settings(PipelineOptions(["--bounded"]).view_as(SourceOptions)))
['bounded', 'consumer_config', 'max_records', 'partition_discovery_s']
"""

from __future__ import annotations

from typing import Any

from beam_pipelines.launch.options import (
    RegistryOptions,
    SourceOptions,
    kafka_settings,
    max_record_bytes,
    open_registry_from,
    subject_version,
)
from transforms.validate import DecodeAndValidate

__all__ = ["decode", "read_settings"]


def read_settings(source: SourceOptions) -> dict[str, Any]:
    """``read_from_uri``'s arguments from the source flags (bounds, Kafka settings, discovery)."""
    return {
        "bounded": source.bounded,
        "max_records": source.max_records,
        "consumer_config": kafka_settings(source),
        "partition_discovery_s": source.partition_discovery_s,
    }


def decode(registry: RegistryOptions, *, subject: str) -> DecodeAndValidate:
    """The decode step from the registry flags; ``subject`` unless ``--subject`` names another."""
    return DecodeAndValidate(
        open_registry_from(registry),
        subject=registry.subject or subject,
        version=subject_version(registry),
        format=registry.schema_format,
        max_record_bytes=max_record_bytes(registry),
    )
