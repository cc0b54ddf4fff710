"""Schema files (versioned subjects), registry clients and wire-format codecs."""

from schemas.base import (
    COMPATIBILITY_LEVELS,
    RegisteredSchema,
    RegistryUnavailableError,
    SchemaNotFoundError,
    SchemaRegistry,
)
from schemas.codecs import AvroCodec, DecodeError, JsonCodec, codec_for, encode_framed
from schemas.compatibility import check_candidate, check_subject
from schemas.confluent import ConfluentRegistry
from schemas.factory import open_registry
from schemas.registry import LocalFileRegistry, schema_id_for
from schemas.wire import FramingError, frame, unframe

__all__ = [
    "COMPATIBILITY_LEVELS",
    "AvroCodec",
    "ConfluentRegistry",
    "DecodeError",
    "FramingError",
    "JsonCodec",
    "LocalFileRegistry",
    "RegisteredSchema",
    "RegistryUnavailableError",
    "SchemaNotFoundError",
    "SchemaRegistry",
    "check_candidate",
    "check_subject",
    "codec_for",
    "encode_framed",
    "frame",
    "open_registry",
    "schema_id_for",
    "unframe",
]
