"""The local services' former single module, kept for imports not yet moved (tests/faults/).

Import from the modules instead: :mod:`runners.local.process` (``LocalService``,
``free_port``), :mod:`runners.local.broker`, :mod:`runners.local.aws`,
:mod:`runners.local.gcp` and :mod:`runners.local.job_service` (``LocalJobService``).
"""

from runners.local.aws import LocalKinesalite, MotoServer, kinesalite_binary
from runners.local.broker import LocalKafkaBroker, s3_broker_storage, tansu_binary
from runners.local.gcp import LocalGcsEmulator, LocalPubSubEmulator, pubsub_emulator_binary
from runners.local.process import LocalService, free_port

__all__ = [
    "LocalGcsEmulator",
    "LocalKafkaBroker",
    "LocalKinesalite",
    "LocalPubSubEmulator",
    "LocalService",
    "MotoServer",
    "free_port",
    "kinesalite_binary",
    "pubsub_emulator_binary",
    "s3_broker_storage",
    "tansu_binary",
]
