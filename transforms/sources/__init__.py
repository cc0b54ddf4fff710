"""Sources: each reads a system into :class:`~transforms.record.Record` elements."""

from transforms.sources.deadletters import ReadDeadLetters
from transforms.sources.files import ReadFromFiles
from transforms.sources.kafka import ReadFromKafka
from transforms.sources.kinesis import ReadFromKinesis
from transforms.sources.pubsub import ReadFromPubSub
from transforms.sources.uri import read_from_uri

__all__ = [
    "ReadDeadLetters",
    "ReadFromFiles",
    "ReadFromKafka",
    "ReadFromKinesis",
    "ReadFromPubSub",
    "read_from_uri",
]
