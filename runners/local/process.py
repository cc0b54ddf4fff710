"""A local server process on a free loopback port, stopped by its PID: every service's base."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from schemas.errors import SourceUnavailableError

__all__ = ["LocalService", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalService:
    """A local server process on a free loopback port, stopped by its PID."""

    name = "service"

    def __init__(self, *, port: int | None = None, start_timeout_s: float = 20.0) -> None:
        self.port = port or free_port()
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line that starts the server on ``self.port``."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def environment(self) -> dict[str, str]:
        """Environment variables the process starts with (this process's by default)."""
        return dict(os.environ)

    def start(self) -> LocalService:
        # $DATAPLANE_SERVICE_LOG_DIR keeps each service's output (e.g. to see why an
        # emulator exited in a long trial); it is discarded otherwise.
        log_dir = os.environ.get("DATAPLANE_SERVICE_LOG_DIR")
        sink: Any = subprocess.DEVNULL
        if log_dir:
            name = self.name.replace(" ", "-").replace("/", "-")
            sink = open(Path(log_dir) / f"{name}-{self.port}.log", "ab")  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log_dir:
                sink.close()  # the child has its own copy
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise SourceUnavailableError(
                    f"the local {self.name} exited with code {self._process.returncode} at start"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise SourceUnavailableError(
            f"the local {self.name} did not listen on 127.0.0.1:{self.port} within "
            f"{self._start_timeout_s}s"
        )

    def stop(self) -> None:
        """Stops the process by its PID (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def restart(self, *, down_s: float = 0.0) -> None:
        """Stops the service, waits ``down_s`` seconds, starts it again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
