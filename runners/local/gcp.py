"""Google Cloud emulators: Cloud Storage (gcp-storage-emulator) and Pub/Sub (Google's own)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from runners.local.process import LocalService
from schemas.errors import ConfigError

__all__ = ["LocalGcsEmulator", "LocalPubSubEmulator", "pubsub_emulator_binary"]

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
