"""AWS emulators: moto (S3, Kinesis, ...) and kinesalite (Kinesis with resharding)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from runners.local.process import LocalService
from schemas.errors import ConfigError

__all__ = ["LocalKinesalite", "MotoServer", "kinesalite_binary"]


def kinesalite_binary() -> str | None:
    """Path of kinesalite (npm): ``$KINESALITE_BIN``, the virtualenv's copy, or PATH; else None."""
    explicit = os.environ.get("KINESALITE_BIN")
    if explicit:
        return explicit
    beside = Path(sys.prefix) / "node_modules" / ".bin" / "kinesalite"
    if beside.exists():
        return str(beside)
    return shutil.which("kinesalite")


class MotoServer(LocalService):
    """moto's AWS emulator (Kinesis, S3, ...) on a free loopback port.

    Example:
        >>> with MotoServer() as moto:
        ...     moto.endpoint_url.startswith("http://127.0.0.1:")
        True
    """

    name = "moto server"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def __enter__(self) -> MotoServer:
        self.start()
        return self


_KINESALITE_ON_LOOPBACK = (
    "var options = JSON.parse(process.argv[2]);"
    "var server = require(process.argv[1])(options).listen(options.port, '127.0.0.1', function () {"
    "  console.log('Listening at http://127.0.0.1:' + server.address().port);"
    "});"
)


class LocalKinesalite(LocalService):
    """kinesalite, a Kinesis emulator with realistic sequence numbers and resharding.

    Raises:
        ConfigError: at start, when kinesalite is not installed (npm).
    """

    name = "kinesalite"

    def __init__(self, *, path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._path = path  # where its streams persist (LevelDB); in memory without one

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = kinesalite_binary()
        if binary is None:
            raise ConfigError(
                "KINESALITE_BIN", "kinesalite not found; `npm install kinesalite` or set it"
            )
        options: dict[str, Any] = {
            "port": self.port,
            "shardLimit": 100,
            "createStreamMs": 0,
            "deleteStreamMs": 0,
            "updateStreamMs": 0,
        }
        if self._path:
            options["path"] = self._path
        module = Path(binary).resolve().with_name("index.js")
        node = shutil.which("node")
        if node is None or not module.is_file():  # a binary of its own ($KINESALITE_BIN)
            flags = [f"--{k}={v}" for k, v in options.items() if k != "port"]
            return [binary, "--port", str(self.port), *flags]
        # kinesalite's own command listens on every interface; this is the same
        # server listening on the loopback interface only.
        return [node, "-e", _KINESALITE_ON_LOOPBACK, str(module), json.dumps(options)]

    def __enter__(self) -> LocalKinesalite:
        self.start()
        return self
