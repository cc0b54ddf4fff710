"""Proxies that refuse or hold traffic until a test says, so a test can wait on an event.

* :class:`LatePort` stands at a TCP address in front of a service that is down: it
  resets connections and counts them, so the test knows a client has tried and
  failed (and is still trying); :meth:`LatePort.open` then forwards connections to
  the service, up by then.
* :class:`HeldCalls` stands in front of an AWS JSON API (Kinesis on kinesalite): it
  forwards every call, but holds calls of one operation after the first ``allow``
  until :meth:`HeldCalls.release`, so that something can happen mid-read at a
  moment the test chooses, not one a clock hopes for.

Both bind 127.0.0.1 on a free port and stop with their ``with`` block.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

__all__ = ["HeldCalls", "LatePort"]

_HOLD_AT_MOST_S = 300.0  # a held call gives up after this (a test failed)


class LatePort:
    """A loopback port in front of a service that is down: it refuses, then forwards.

    Until :meth:`open`, each connection is reset at once, as a port with nothing behind
    it resets it, and counted: :meth:`wait_refused` tells the test that a client has
    tried and failed that many times, so it is still trying, not done. After
    :meth:`open`, connections are forwarded to ``target_port``.

    Example:
        >>> with LatePort(target_port=9) as front:
        ...     front.wait_refused(1, timeout_s=0.01)
        False
    """

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._refused = 0
        self._changed = threading.Condition()
        self._opened = threading.Event()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []

    def wait_refused(self, count: int, *, timeout_s: float) -> bool:
        """Waits until ``count`` connections were refused; False after ``timeout_s``."""
        with self._changed:
            return self._changed.wait_for(lambda: self._refused >= count, timeout_s)

    def open(self) -> None:
        """Forwards connections to the target from now on."""
        self._opened.set()

    def __enter__(self) -> LatePort:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        for sock in [self._listener, *self._sockets]:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._opened.is_set():
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # a reset, no TIME_WAIT
                with self._changed:
                    self._refused += 1
                    self._changed.notify_all()
                continue
            self._sockets.append(client)
            threading.Thread(target=self._forward, args=(client,), daemon=True).start()

    def _forward(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self._target_port), timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        self._sockets.append(upstream)
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        _pipe(client, upstream)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copies ``source`` to ``sink`` until either end closes."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        with contextlib.suppress(OSError):
            sink.close()


class HeldCalls:
    """An HTTP proxy for AWS JSON APIs that holds calls of ``operation`` after the first ``allow``.

    ``answered`` is set once the allowed calls have been answered; held calls go on
    after :meth:`release` (or when the proxy closes).
    """

    def __init__(self, upstream: str, *, operation: str, allow: int = 1) -> None:
        self.answered = threading.Event()
        self._released = threading.Event()
        target = urlsplit(upstream)
        proxy = self
        passed = [0]
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                called = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                allowed = True
                if called == operation:
                    with lock:
                        passed[0] += 1
                        allowed = passed[0] <= allow
                    if not allowed:
                        proxy._released.wait(_HOLD_AT_MOST_S)
                status, headers, data = _forward(target, self.path, body, self.headers)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                if called == operation and allowed and passed[0] >= allow:
                    proxy.answered.set()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def release(self) -> None:
        """Lets held and later calls through."""
        self._released.set()

    def __enter__(self) -> HeldCalls:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self._server.shutdown()
        self._server.server_close()


def _forward(target: Any, path: str, body: bytes, headers: Any) -> tuple[int, list, bytes]:
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    try:
        sent = {k: v for k, v in headers.items() if k.lower() != "host"}
        connection.request("POST", path, body=body, headers=sent)
        answer = connection.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        connection.close()
