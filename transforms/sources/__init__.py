"""Sources: each reads a system into :class:`~transforms.record.Record` elements."""

from transforms.sources.kafka import ReadFromKafka
from transforms.sources.uri import read_from_uri

__all__ = ["ReadFromKafka", "read_from_uri"]
