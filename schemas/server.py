"""Serves a local file registry over the Confluent Schema Registry REST API.

Any Confluent-compatible client (confluent-kafka's serializers, Java producers,
kcat, curl) can then use the schemas kept in git during local work::

    dataplane schemas serve --port 8081

Read-only by default: registering a schema that is already a version of the
subject answers with its id (so serializers with ``auto.register.schemas`` work),
anything new is refused with error 42205. With ``writable=True`` a new schema must
compile (Avro: fastavro; JSON Schema: fastjsonschema, never following a ``$ref`` to
another document) and pass the subject's compatibility level; it is then written
as the next version file, ready to be committed.

What a client cannot do, whatever it sends:

* write outside the registry directory: a subject is a single directory name
  (Confluent's rules, and no ``/``, ``\\``, leading ``.``, control characters or
  more than 255 UTF-8 bytes: error 42208), and the resolved directory must be a
  child of the resolved root;
* change a version: an existing version file is never rewritten, and posting the
  schema of an existing version answers that version's id;
* hold a thread: a whole request is read within ``request_timeout_s`` (else 408),
  a body is at most ``max_body_bytes`` (else 413) and framed by one decimal
  ``Content-Length`` (else 400, or 411 when missing or chunked);
* learn where the files are: answers never carry the server's paths, and every
  failure is a JSON ``{"error_code": ..., "message": ...}``, never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import fastjsonschema

from schemas.base import (
    DEFAULT_COMPATIBILITY,
    RegisteredSchema,
    SchemaFormat,
    SchemaNotFoundError,
    canonical_text,
    format_from_schema_type,
)
from schemas.codecs import parse_avro
from schemas.compatibility import check_candidate
from schemas.errors import ConfigError
from schemas.registry import LocalFileRegistry, schema_id_for

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_REQUEST_TIMEOUT_S", "RegistryServer"]

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_REQUEST_TIMEOUT_S = 10.0
_MAX_SUBJECT_BYTES = 255  # one file name on common file systems
_MAX_SCHEMA_DEPTH = 256  # JSON nesting levels; far beyond any real schema
_SUFFIXES = (".json", ".avsc")  # the version files LocalFileRegistry reads
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Java's isISOControl, as Confluent checks
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTENT_LENGTH = re.compile(r"[0-9]+")
_VERSION = re.compile(r"[0-9]{1,10}")
_log = logging.getLogger(__name__)


class _ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _subject_missing(subject: str) -> _ApiError:
    return _ApiError(404, 40401, f"Subject '{subject}' not found.")


# --- subjects: names, and the directory each maps to -----------------------------------


def _subject_problem(subject: str) -> str | None:
    """Why ``subject`` cannot name a subject here (None: it can)."""
    if _CONTROL.search(subject):
        return "it holds a control character"
    if _SURROGATE.search(subject):
        return "it is not valid Unicode"
    if subject == "__GLOBAL":
        return "the name is reserved"
    if "/" in subject or "\\" in subject:
        return "it holds a path separator"
    if subject.startswith("."):
        return "it starts with '.'"
    if subject.startswith(":."):
        return "subject contexts are not supported here"
    if len(subject.encode("utf-8")) > _MAX_SUBJECT_BYTES:
        return f"it is longer than {_MAX_SUBJECT_BYTES} UTF-8 bytes"
    return None


def _shown(subject: str) -> str:
    return subject if len(subject) <= 80 else subject[:80] + "..."


def _checked_subject(subject: str) -> str:
    """``subject`` if it is a valid name, else Confluent's error 42208."""
    problem = "it is empty" if not subject else _subject_problem(subject)
    if problem is not None:
        raise _ApiError(
            422, 42208, f"The specified subject '{_shown(subject)}' is not valid: {problem}."
        )
    return subject


def _subject_dir(root: Path, subject: str) -> Path:
    """The directory of ``subject``: a child of ``root`` once both are resolved, or 42208.

    A second guard behind :func:`_checked_subject`: symbolic links, ``..`` or an
    absolute name cannot lead a write out of the registry.
    """
    try:
        base = root.resolve()
        directory = (base / subject).resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        directory = None
    if (
        directory is None
        or directory.parent != base
        or directory.name != subject
        or (directory.exists() and not directory.is_dir())
    ):
        raise _ApiError(
            422,
            42208,
            f"The specified subject '{_shown(subject)}' is not valid: it does not name a "
            "directory of its own in the registry.",
        )
    return directory


# --- schemas: parsing and compiling what a client posts ---------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_STRICT_JSON = json.JSONDecoder(parse_constant=_reject_constant)


def _invalid(reason: str) -> _ApiError:
    return _ApiError(422, 42201, f"Invalid schema: {reason}")


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > _MAX_SCHEMA_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def _schema_of(body: Any) -> tuple[Any, SchemaFormat]:
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise _invalid('the body needs a "schema" string')
    if body.get("references"):
        raise _invalid("schema references are not supported here")
    schema_type = body.get("schemaType")
    if schema_type is not None and not isinstance(schema_type, str):
        raise _invalid('"schemaType" must be a string')
    try:
        fmt = format_from_schema_type(schema_type)
        schema = _STRICT_JSON.decode(body["schema"])
    except RecursionError:
        raise _invalid("it is nested too deeply") from None
    except ValueError as err:
        raise _invalid(str(err)) from None
    if _too_deep(schema):
        raise _invalid(f"it is nested deeper than {_MAX_SCHEMA_DEPTH} levels")
    return schema, fmt


class _RemoteRefError(Exception):
    """A JSON Schema ``$ref`` names another document."""


def _refuse_remote(uri: str) -> Any:
    raise _RemoteRefError(uri)


class _NoRemoteDocuments(Mapping[str, Callable[[str], Any]]):
    """fastjsonschema handlers for every URI scheme, each refusing.

    Without them fastjsonschema fetches a ``$ref`` it cannot resolve locally with
    ``urlopen``: a posted schema could make the server read its own files
    (``file:///...``) or call other hosts.
    """

    def __contains__(self, scheme: object) -> bool:
        return True

    def __getitem__(self, scheme: str) -> Callable[[str], Any]:
        return _refuse_remote

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _compile(schema: Any, fmt: SchemaFormat) -> None:
    """Raises 42201 unless ``schema`` compiles as the codecs will compile it."""
    copy = json.loads(canonical_text(schema))  # the compilers may change what they get
    try:
        if fmt == "avro":
            parse_avro(copy)
        else:
            fastjsonschema.compile(copy, handlers=_NoRemoteDocuments())
    except _RemoteRefError as err:
        raise _invalid(f"$ref {str(err)!r} names another document; inline it") from None
    except RecursionError:
        raise _invalid("it is nested too deeply") from None
    except Exception as err:  # each compiler has its own zoo of exceptions
        raise _invalid(f"{type(err).__name__}: {err}") from None


# --- the endpoints ----------------------------------------------------------------------


class _Api:
    """The REST endpoints, as plain methods over a registry (no HTTP in here).

    Calls are serialised: the registry's index is only ever touched by one request.
    """

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
            ("GET", re.compile(r"/schemas/ids/([0-9]+)"), self.schema_by_id),
            ("GET", re.compile(r"/schemas/ids/([0-9]+)/schema"), self.raw_schema_by_id),
            ("GET", re.compile(r"/schemas/ids/([0-9]+)/versions"), self.id_versions),
            ("GET", re.compile(r"/schemas/ids/([0-9]+)/subjects"), self.id_subjects),
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

    def call(self, handler: Callable[..., Any], args: list[str], kwargs: dict[str, Any]) -> Any:
        with self._lock:
            return handler(*args, **kwargs)

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
        _checked_subject(subject)
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
                f"Subject {_shown(subject)} is in read-only mode: add the schema as a version "
                f"file under {_shown(subject)}/ in the registry directory, or serve with "
                "--writable",
            )
        _compile(schema, fmt)
        history = self.registry.history(subject) if subject in self.registry.subjects() else []
        problems = check_candidate(schema, fmt, history, self.registry.compatibility(subject))
        if problems:
            raise _ApiError(
                409,
                409,
                "Schema being registered is incompatible with an earlier schema "
                f'for subject "{_shown(subject)}", details: {problems}',
            )
        return {"id": self._write(subject, schema, fmt, history).schema_id}

    def _write(
        self, subject: str, schema: Any, fmt: SchemaFormat, history: list[RegisteredSchema]
    ) -> RegisteredSchema:
        """Writes the next version, after checking it can only create a new file."""
        directory = _subject_dir(self.registry.root, subject)
        version = max((entry.version for entry in history), default=0) + 1
        try:
            clash = self.registry.by_id(schema_id_for(subject, version))
        except SchemaNotFoundError:
            pass
        else:
            raise _ApiError(
                422,
                42208,
                f"The specified subject '{_shown(subject)}' is not valid: the id of its version "
                f"{version} is already the id of {clash.subject} version {clash.version}; "
                "choose another name.",
            )
        taken = [s for s in _SUFFIXES if os.path.lexists(directory / f"{version}{s}")]
        if taken:
            raise _ApiError(
                422,
                42205,
                f"{_shown(subject)}/{version}{taken[0]} exists but is not served: restart the "
                "server to serve it; versions are never overwritten",
            )
        try:
            return self.registry.register(subject, schema, fmt)
        except OSError as err:
            for suffix in _SUFFIXES:  # no half-written version file (none was there)
                with contextlib.suppress(OSError):
                    (directory / f"{version}{suffix}").unlink(missing_ok=True)
            raise _ApiError(
                500, 50001, f"Error while registering schema: cannot write it ({err.strerror})"
            ) from None

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
        _compile(schema, fmt)
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
            raise _subject_missing(_shown(subject))
        return subject

    def _entry(self, subject: str, version: str) -> RegisteredSchema:
        self._known(subject)
        if version in ("latest", "-1"):
            return self.registry.latest(subject)
        if not _VERSION.fullmatch(version) or not 1 <= int(version) <= 2**31 - 1:
            raise _ApiError(
                422,
                42202,
                f"The specified version '{version[:20]}' is not a valid "
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
            raise _ApiError(404, 40403, f"Schema {schema_id[:20]} not found") from None


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


# --- HTTP -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    max_body_bytes: int
    request_timeout_s: float


class _RequestTimeoutError(OSError):
    """The client did not send its whole request before the deadline."""


class _DeadlineReader(io.RawIOBase):
    """A socket's bytes, every read ending by one deadline for the whole request.

    A socket timeout alone bounds each read: a client sending a byte now and then
    would hold the thread for as long as it likes.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline = time.monotonic()
        self.received = 0

    def start(self, timeout_s: float) -> None:
        self.deadline, self.received = time.monotonic() + timeout_s, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _RequestTimeoutError("the request was not received in time")
        self._sock.settimeout(left)
        try:
            count = self._sock.recv_into(buffer)
        except TimeoutError:
            raise _RequestTimeoutError("the request was not received in time") from None
        self.received += count
        return count


class _Handler(BaseHTTPRequestHandler):
    api: _Api
    limits: _Limits
    raw_requestline: bytes
    server_version = "beam-dataplane-registry"
    default_request_version = "HTTP/1.0"  # answers always carry a status line (no HTTP/0.9)

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # replaced by a reader that keeps the request's deadline
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        self._reader.start(self.limits.request_timeout_s)
        self._body_read = False
        self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
        try:
            super().handle_one_request()
        except _RequestTimeoutError:
            self.close_connection = True
            if self._reader.received:  # a request began: answer it; an idle connection ends
                self._answer(408, {"error_code": 408, "message": "the request took too long"})

    def parse_request(self) -> bool:
        if not self.raw_requestline.strip():
            self.requestline = ""
            self.send_error(HTTPStatus.BAD_REQUEST, "the request line is empty")
            return False
        return super().parse_request()

    def do_GET(self) -> None:
        self._body_read = True  # nothing is read, nothing is expected
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

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Every protocol error as Confluent's JSON error (http.server sends HTML)."""
        status = {HTTPStatus.NOT_IMPLEMENTED: 405, HTTPStatus.HTTP_VERSION_NOT_SUPPORTED: 400}.get(
            HTTPStatus(code), code
        )
        message = message or explain or HTTPStatus(status).phrase
        self._answer(status, {"error_code": status, "message": message})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a registry serving a busy producer would flood the terminal

    def _serve(self, method: str) -> None:
        try:
            path, query = self._target()
            body = self._body() if method == "POST" else None
            handler, args = self._route(method, path)
            kwargs: dict[str, Any] = {"query": query}
            if method == "POST":
                kwargs["body"] = body
            self._answer(200, self.api.call(handler, args, kwargs))
        except _ApiError as err:
            self._answer(err.status, {"error_code": err.code, "message": err.message})
        except SchemaNotFoundError:
            self._answer(404, {"error_code": 40401, "message": "Subject not found."})
        except Exception:
            _log.exception("the registry server failed on %s %r", method, self.path[:200])
            self._answer(500, {"error_code": 500, "message": "Internal Server Error"})

    def _target(self) -> tuple[str, dict[str, str]]:
        try:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        except ValueError:  # e.g. "//[x/subjects": a host part urlsplit cannot read
            raise _ApiError(400, 400, "the request target is malformed") from None
        return parts.path.rstrip("/") or "/", query

    def _route(self, method: str, path: str) -> tuple[Callable[..., Any], list[str]]:
        for verb, pattern, handler in self.api.routes:
            match = pattern.fullmatch(path)
            if match and verb == method:
                return handler, [unquote(g) for g in match.groups()]
        raise _ApiError(404, 404, f"HTTP 404 Not Found: {method} {path[:200]}")

    def _body(self) -> Any:
        length = self._content_length()
        try:
            raw = self.rfile.read(length) if length else b""
        except _RequestTimeoutError:
            raise _ApiError(408, 408, "the request body was not received in time") from None
        if len(raw) < length:
            raise _ApiError(400, 400, f"the body ended after {len(raw)} of {length} bytes")
        self._body_read = True
        try:
            return json.loads(raw) if raw else {}
        except RecursionError:
            raise _ApiError(400, 400, "the request body is nested too deeply") from None
        except ValueError:
            raise _ApiError(400, 400, "the request body is not JSON") from None

    def _content_length(self) -> int:
        if "Transfer-Encoding" in self.headers:
            raise _ApiError(411, 411, "send the body with a Content-Length, not chunked")
        values = {v.strip() for v in self.headers.get_all("Content-Length", [])}
        if not values:
            raise _ApiError(411, 411, "a POST needs a Content-Length header")
        value = values.pop()
        if values or not _CONTENT_LENGTH.fullmatch(value):
            raise _ApiError(400, 400, "the Content-Length header is not one decimal number")
        if len(value) > 18 or int(value) > self.limits.max_body_bytes:
            raise _ApiError(
                413, 413, f"the request body is over {self.limits.max_body_bytes} bytes"
            )
        return int(value)

    def _answer(self, status: int, body: Any) -> None:
        data = _without_paths(json.dumps(body), self.api.registry.root).encode("utf-8")
        self.close_connection = True
        try:
            self.connection.settimeout(self.limits.request_timeout_s)
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if status >= 400 and not self._body_read:
                self._discard_unread()
        except OSError:
            pass  # the client has gone: nobody to answer

    def _discard_unread(self) -> None:
        """Reads what the client still sends, until it closes or the deadline.

        Closing a socket with unread bytes resets the connection, and the client
        may then lose the answer before reading it.
        """
        self.connection.shutdown(socket.SHUT_WR)
        left = self.limits.max_body_bytes
        while left > 0:
            chunk = self.rfile.read1(min(left, 65536))
            if not chunk:
                return
            left -= len(chunk)


def _without_paths(text: str, root: Path) -> str:
    """``text`` with the registry's location replaced (a guard behind the messages)."""
    for shown in {str(root.resolve()), str(root.absolute())}:
        if len(shown) > 1:
            text = text.replace(json.dumps(shown)[1:-1], "<registry>")
    return text


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 drops connections a busy producer opens

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("connection from %s failed", client_address, exc_info=True)


class RegistryServer:
    """A Confluent-compatible REST server over a local file registry, in a thread.

    Args:
        registry: the registry to serve (the packaged schemas by default).
        host: the address to bind; loopback by default.
        port: the port to bind; 0 picks a free one (see :attr:`url`).
        writable: accept new schema versions (compiled, compatibility-checked,
            written as new files).
        max_body_bytes: the largest request body; a larger one is refused (413).
        request_timeout_s: the time a client has to send a whole request; then it
            is answered 408 (a connection that sent nothing is just closed).

    Raises:
        ConfigError: when a limit is not positive.

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
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        if max_body_bytes <= 0:
            raise ConfigError("max_body_bytes", f"must be positive; got {max_body_bytes}")
        if not request_timeout_s > 0:
            raise ConfigError("request_timeout_s", f"must be positive; got {request_timeout_s}")
        handler = type(
            "Handler",
            (_Handler,),
            {
                "api": _Api(registry or LocalFileRegistry(), writable=writable),
                "limits": _Limits(max_body_bytes, request_timeout_s),
            },
        )
        self._httpd = _Server((host, port), handler)
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
