"""Serves a local file registry over the Confluent Schema Registry REST API.

Any Confluent-compatible client (confluent-kafka's serializers, Java producers,
kcat, curl) can then use the schemas kept in git during local work::

    dataplane schemas serve --port 8081

Read-only by default: registering a schema that is already a version of the
subject answers with its id (so serializers with ``auto.register.schemas`` work),
anything new is refused with error 42205. With ``writable=True`` a new schema is
checked against the subject's compatibility level and written as the next
version file, ready to be committed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from schemas.base import (
    DEFAULT_COMPATIBILITY,
    RegisteredSchema,
    SchemaNotFoundError,
    format_from_schema_type,
)
from schemas.compatibility import check_candidate
from schemas.registry import LocalFileRegistry

__all__ = ["RegistryServer"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_MAX_BODY = 4 * 1024 * 1024


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _subject_missing(subject: str) -> _ApiError:
    return _ApiError(404, 40401, f"Subject '{subject}' not found.")


class _Api:
    """The REST endpoints, as plain methods over a registry (no HTTP in here)."""

    def __init__(self, registry: LocalFileRegistry, *, writable: bool) -> None:
        self.registry = registry
        self.writable = writable
        self._lock = threading.Lock()
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            ("GET", re.compile(r"/subjects"), self.list_subjects),
            ("GET", re.compile(r"/subjects/([^/]+)/versions"), self.list_versions),
            ("GET", re.compile(r"/subjects/([^/]+)/versions/([^/]+)"), self.get_version),
            ("GET", re.compile(r"/subjects/([^/]+)/versions/([^/]+)/schema"), self.raw_schema),
            ("POST", re.compile(r"/subjects/([^/]+)"), self.lookup),
            ("POST", re.compile(r"/subjects/([^/]+)/versions"), self.register),
            ("GET", re.compile(r"/schemas/ids/(\d+)"), self.schema_by_id),
            ("GET", re.compile(r"/schemas/ids/(\d+)/schema"), self.raw_schema_by_id),
            ("GET", re.compile(r"/schemas/ids/(\d+)/versions"), self.id_versions),
            ("GET", re.compile(r"/schemas/ids/(\d+)/subjects"), self.id_subjects),
            ("GET", re.compile(r"/schemas/types"), lambda **_: ["AVRO", "JSON"]),
            ("POST", re.compile(r"/compatibility/subjects/([^/]+)/versions/([^/]+)"), self.test),
            ("POST", re.compile(r"/compatibility/subjects/([^/]+)/versions"), self.test_all),
            (
                "GET",
                re.compile(r"/config"),
                lambda **_: {"compatibilityLevel": DEFAULT_COMPATIBILITY},
            ),
            ("GET", re.compile(r"/config/([^/]+)"), self.config),
            ("GET", re.compile(r"/mode"), self.mode),
            ("GET", re.compile(r"/mode/([^/]+)"), lambda _s, **kw: self.mode(**kw)),
            ("GET", re.compile(r"/"), lambda **_: {}),
        ]

    def list_subjects(self, **_: Any) -> list[str]:
        return self.registry.subjects()

    def list_versions(self, subject: str, **_: Any) -> list[int]:
        return self.registry.versions(self._known(subject))

    def get_version(self, subject: str, version: str, **_: Any) -> dict[str, Any]:
        return _described(self._entry(subject, version))

    def raw_schema(self, subject: str, version: str, **_: Any) -> Any:
        return self._entry(subject, version).schema

    def schema_by_id(self, schema_id: str, **_: Any) -> dict[str, Any]:
        entry = self._by_id(schema_id)
        body: dict[str, Any] = {"schema": entry.text}
        if entry.format != "avro":
            body["schemaType"] = entry.schema_type
        return body

    def raw_schema_by_id(self, schema_id: str, **_: Any) -> Any:
        return self._by_id(schema_id).schema

    def id_versions(self, schema_id: str, **_: Any) -> list[dict[str, Any]]:
        entry = self._by_id(schema_id)
        return [{"subject": entry.subject, "version": entry.version}]

    def id_subjects(self, schema_id: str, **_: Any) -> list[str]:
        return [self._by_id(schema_id).subject]

    def lookup(self, subject: str, body: Any, **_: Any) -> dict[str, Any]:
        schema, fmt = _schema_of(body)
        try:
            return _described(self.registry.lookup(self._known(subject), schema, fmt))
        except SchemaNotFoundError:
            raise _ApiError(404, 40403, "Schema not found") from None

    def register(self, subject: str, body: Any, **_: Any) -> dict[str, Any]:
        schema, fmt = _schema_of(body)
        if subject in self.registry.subjects():
            try:
                return {"id": self.registry.lookup(subject, schema, fmt).schema_id}
            except SchemaNotFoundError:
                pass
        if not self.writable:
            raise _ApiError(
                422,
                42205,
                f"Subject {subject} is in read-only mode: add the schema as a file under "
                f"{self.registry.root}/{subject}/ or serve with --writable",
            )
        with self._lock:
            history = self.registry.history(subject) if subject in self.registry.subjects() else []
            problems = check_candidate(schema, fmt, history, self.registry.compatibility(subject))
            if problems:
                raise _ApiError(
                    409,
                    409,
                    "Schema being registered is incompatible with an earlier schema "
                    f'for subject "{subject}", details: {problems}',
                )
            return {"id": self.registry.register(subject, schema, fmt).schema_id}

    def test(self, subject: str, version: str, body: Any, query: dict[str, str]) -> dict[str, Any]:
        entry = self._entry(subject, version)
        return self._compatibility_answer(subject, body, [entry], query)

    def test_all(self, subject: str, body: Any, query: dict[str, str]) -> dict[str, Any]:
        history = self.registry.history(self._known(subject))
        return self._compatibility_answer(subject, body, history, query)

    def _compatibility_answer(
        self, subject: str, body: Any, history: list[RegisteredSchema], query: dict[str, str]
    ) -> dict[str, Any]:
        schema, fmt = _schema_of(body)
        problems = check_candidate(schema, fmt, history, self.registry.compatibility(subject))
        answer: dict[str, Any] = {"is_compatible": not problems}
        if query.get("verbose", "").lower() == "true":
            answer["messages"] = problems
        return answer

    def config(self, subject: str, **_: Any) -> dict[str, str]:
        return {"compatibilityLevel": self.registry.compatibility(self._known(subject))}

    def mode(self, **_: Any) -> dict[str, str]:
        return {"mode": "READWRITE" if self.writable else "READONLY"}

    def _known(self, subject: str) -> str:
        if subject not in self.registry.subjects():
            raise _subject_missing(subject)
        return subject

    def _entry(self, subject: str, version: str) -> RegisteredSchema:
        self._known(subject)
        if version in ("latest", "-1"):
            return self.registry.latest(subject)
        if not version.isdigit():
            raise _ApiError(
                422,
                42202,
                f"The specified version '{version}' is not a valid "
                "version id. Allowed values are between [1, 2^31-1] and the string "
                '"latest"',
            )
        try:
            return self.registry.get(subject, int(version))
        except SchemaNotFoundError:
            raise _ApiError(404, 40402, f"Version {version} not found.") from None

    def _by_id(self, schema_id: str) -> RegisteredSchema:
        try:
            return self.registry.by_id(int(schema_id))
        except SchemaNotFoundError:
            raise _ApiError(404, 40403, f"Schema {schema_id} not found") from None


def _described(entry: RegisteredSchema) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": entry.subject,
        "version": entry.version,
        "id": entry.schema_id,
        "schema": entry.text,
    }
    if entry.format != "avro":
        body["schemaType"] = entry.schema_type
    return body


def _schema_of(body: Any) -> tuple[Any, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise _ApiError(422, 42201, 'Invalid schema: the body needs a "schema" string')
    if body.get("references"):
        raise _ApiError(422, 42201, "Invalid schema: schema references are not supported here")
    try:
        fmt = format_from_schema_type(body.get("schemaType"))
        schema = json.loads(body["schema"])
    except ValueError as err:
        raise _ApiError(422, 42201, f"Invalid schema: {err}") from None
    return schema, fmt


class _Handler(BaseHTTPRequestHandler):
    api: _Api
    server_version = "beam-dataplane-registry"

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._answer(
            422,
            {
                "error_code": 42205,
                "message": "The registry is read-only here: configuration lives in git",
            },
        )

    def do_DELETE(self) -> None:
        self.do_PUT()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a registry serving a busy producer would flood the terminal

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            body = self._body() if method == "POST" else None
            handler, args = self._route(method, path)
            kwargs: dict[str, Any] = {"query": query}
            if method == "POST":
                kwargs["body"] = body
            self._answer(200, handler(*args, **kwargs))
        except _ApiError as err:
            self._answer(err.status, {"error_code": err.code, "message": err.message})
        except SchemaNotFoundError as err:
            self._answer(404, {"error_code": 40401, "message": str(err)})

    def _route(self, method: str, path: str) -> tuple[Callable[..., Any], list[str]]:
        for verb, pattern, handler in self.api.routes:
            match = pattern.fullmatch(path)
            if match and verb == method:
                return handler, [unquote(g) for g in match.groups()]
        raise _ApiError(404, 404, f"HTTP 404 Not Found: {method} {path}")

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY:
            raise _ApiError(413, 413, f"request body over {_MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise _ApiError(400, 400, "the request body is not JSON") from None

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class RegistryServer:
    """A Confluent-compatible REST server over a local file registry, in a thread.

    Args:
        registry: the registry to serve (the packaged schemas by default).
        host: the address to bind; loopback by default.
        port: the port to bind; 0 picks a free one (see :attr:`url`).
        writable: accept new schema versions (compatibility-checked, written as files).

    Example:
        >>> import json, urllib.request
        >>> with RegistryServer() as server:
        ...     with urllib.request.urlopen(server.url + "/subjects") as answer:
        ...         json.loads(answer.read())
        ['tweet', 'vehicle_telemetry']
    """

    def __init__(
        self,
        registry: LocalFileRegistry | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        writable: bool = False,
    ) -> None:
        handler = type(
            "Handler",
            (_Handler,),
            {"api": _Api(registry or LocalFileRegistry(), writable=writable)},
        )
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL clients use, e.g. ``http://127.0.0.1:8081``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RegistryServer:
        """Starts serving in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serves in the calling thread until interrupted."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stops serving and closes the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
