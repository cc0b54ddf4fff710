"""Schema files (versioned subjects), registry clients and wire-format codecs."""

from schemas.registry import LocalFileRegistry, RegisteredSchema, SchemaNotFoundError

__all__ = ["LocalFileRegistry", "RegisteredSchema", "SchemaNotFoundError"]
