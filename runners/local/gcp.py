"""Google Cloud emulators: Cloud Storage (gcp-storage-emulator) and Pub/Sub (Google's own)."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from runners.local.process import LocalService
from schemas.errors import ConfigError

__all__ = [
    "EmulatorTopic",
    "LocalGcsEmulator",
    "LocalPubSubEmulator",
    "pubsub_emulator_binary",
]

_GCLOUD_EMULATOR = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"


def pubsub_emulator_binary() -> str | None:
    """The Pub/Sub emulator: ``$PUBSUB_EMULATOR_BIN``, the Google Cloud CLI's copy, or None."""
    explicit = os.environ.get("PUBSUB_EMULATOR_BIN")
    if explicit:
        return explicit
    if Path(_GCLOUD_EMULATOR).exists():
        return _GCLOUD_EMULATOR
    return shutil.which("cloud-pubsub-emulator")


class LocalGcsEmulator(LocalService):
    """gcp-storage-emulator (Google Cloud Storage JSON API), in memory, with one bucket.

    Point clients at it with ``STORAGE_EMULATOR_HOST=<endpoint_url>``.

    Example:
        >>> with LocalGcsEmulator(bucket="lake") as gcs:
        ...     gcs.endpoint_url.startswith("http://127.0.0.1:")
        True
    """

    name = "GCS emulator"

    def __init__(self, *, bucket: str = "test-bucket", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = shutil.which("gcp-storage-emulator", path=_bin_path()) or "gcp-storage-emulator"
        return [
            binary,
            "start",
            "--host=127.0.0.1",
            f"--port={self.port}",
            "--in-memory",
            "--quiet",
            f"--default-bucket={self.bucket}",
        ]

    def __enter__(self) -> LocalGcsEmulator:
        self.start()
        return self


def _bin_path() -> str:
    """This interpreter's scripts directory first, then PATH."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


class LocalPubSubEmulator(LocalService):
    """Google's Pub/Sub emulator (Java) on a free loopback port.

    Clients find it through ``PUBSUB_EMULATOR_HOST`` (see :attr:`host`).

    Raises:
        ConfigError: at start, when the emulator is not installed.
    """

    name = "Pub/Sub emulator"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        return {**os.environ, "JAVA_OPTS": os.environ.get("JAVA_OPTS", "-Xmx64m")}

    def command(self) -> list[str]:
        binary = pubsub_emulator_binary()
        if binary is None:
            raise ConfigError(
                "PUBSUB_EMULATOR_BIN",
                "the Pub/Sub emulator is not installed (Debian package "
                "google-cloud-cli-pubsub-emulator); set PUBSUB_EMULATOR_BIN to its script",
            )
        return [binary, "--host=127.0.0.1", f"--port={self.port}"]

    def __enter__(self) -> LocalPubSubEmulator:
        self.start()
        return self


class EmulatorTopic:
    """A fresh topic with one subscription on the Pub/Sub emulator ($PUBSUB_EMULATOR_HOST).

    ``ack_deadline_s``: how long a delivered message stays leased before it comes
    back (10, the shortest Pub/Sub allows, makes redelivery quick to observe).
    """

    def __init__(self, project: str, *, ack_deadline_s: int = 10) -> None:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]

        name = uuid.uuid4().hex[:10]
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.topic = self.publisher.topic_path(project, f"topic-{name}")
        self.subscription = self.subscriber.subscription_path(project, f"sub-{name}")
        self.publisher.create_topic(name=self.topic)
        self.subscriber.create_subscription(
            request={
                "name": self.subscription,
                "topic": self.topic,
                "ack_deadline_seconds": ack_deadline_s,
            }
        )

    def publish(self, messages: Iterable[tuple[bytes, Mapping[str, str]]]) -> list[str]:
        """Publishes ``(data, attributes)`` pairs; returns their message ids once all landed."""
        futures = [self.publisher.publish(self.topic, data, **attrs) for data, attrs in messages]
        return [future.result(timeout=60) for future in futures]

    def drain(self) -> int:
        """Pulls and acknowledges what is still to be delivered, until none is; how many."""
        total = 0
        while True:
            answer = self.subscriber.pull(
                request={"subscription": self.subscription, "max_messages": 1000}, timeout=2
            )
            ack_ids = [m.ack_id for m in answer.received_messages]
            if not ack_ids:
                return total
            self.subscriber.acknowledge(
                request={"subscription": self.subscription, "ack_ids": ack_ids}
            )
            total += len(ack_ids)
