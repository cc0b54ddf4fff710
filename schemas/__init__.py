"""The bottom layer: schemas, registries and codecs, and the library's errors and secrets.

Schema files (versioned subjects under ``schemas/<subject>/``), the registry
interface with its local-file and Confluent clients and a Confluent-compatible
server, compatibility checks, the wire format and the Avro / JSON Schema codecs.
Also the two foundations every other package uses and which import nothing of
ours: :mod:`schemas.errors` (one exception hierarchy) and :mod:`schemas.secrets`
(redaction, secret references, shipping secrets to workers). Nothing here imports
``transforms``, ``beam_pipelines`` or ``runners`` (see pyproject's import contracts).
"""

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
