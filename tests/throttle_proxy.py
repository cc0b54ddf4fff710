"""A fault-injecting HTTP proxy for AWS JSON APIs: answers some calls with throttling errors.

It sits between a real boto3 client and a real emulator (moto server) and refuses
the first ``count`` calls of one operation the way Kinesis does, with HTTP 400 and
``ProvisionedThroughputExceededException``; everything else is forwarded unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


class ThrottlingProxy:
    def __init__(self, upstream: str, *, operation: str, count: int) -> None:
        self.refused: list[float] = []
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                called = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                if called == operation and len(proxy.refused) < count:
                    proxy.refused.append(time.monotonic())
                    self._reply(
                        400,
                        {
                            "__type": "ProvisionedThroughputExceededException",
                            "message": "Rate exceeded for shard (injected)",
                        },
                    )
                    return
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request("POST", self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
