"""A TCP relay that can take a server off the network for a while: a broker outage on demand.

Clients connect to the relay's port and it relays each connection to the server.
:meth:`Outage.down_for` closes every relayed connection and stops listening, so
clients see their connections reset and new ones refused, exactly as when the
server is down, then listens again. The server keeps its state, so a trial can
take an in-memory broker "down" without losing its log. Loopback only.

    >>> import socket, threading
    >>> server = socket.create_server(("127.0.0.1", 0))
    >>> def echo():
    ...     conn, _ = server.accept()
    ...     conn.sendall(conn.recv(5)); conn.close()
    >>> _ = threading.Thread(target=echo, daemon=True).start()
    >>> with Outage(server.getsockname()[1]) as relay:
    ...     with socket.create_connection(("127.0.0.1", relay.port)) as client:
    ...         client.sendall(b"hello"); client.recv(5)
    b'hello'
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType

from runners.local.process import free_port

__all__ = ["Outage"]


class Outage:
    """Relays ``127.0.0.1:port`` to ``127.0.0.1:target_port`` until told to go down."""

    def __init__(self, target_port: int, *, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> Outage:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stops listening and resets every relayed connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            _reset(conn)

    def down_for(self, seconds: float) -> None:
        """The server is unreachable for ``seconds``, then reachable again on the same port."""
        self.stop()
        time.sleep(seconds)
        self.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed: the outage began
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _reset(sink)
            source.close()
            with self._lock:
                self._connections -= {source, sink}

    def __enter__(self) -> Outage:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _reset(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
