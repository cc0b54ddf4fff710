"""The registry server against hostile requests (issue 17, item 2).

Every test talks to a real :class:`RegistryServer` over raw sockets, so it can send what
no HTTP library would. Each defect is one member of a class, and the tests generate the
class:

* subject names over path-ish alphabets (``.``, ``/``, ``%2F``, ``%2E``, ``\\``, NUL,
  controls, unicode, long names): after any POST nothing outside the registry root is new
  and no file that was there changed (the whole sandbox is compared before and after);
* a subject whose schema id would collide with another's is refused before any file is
  written, so the registry directory always loads again;
* a new version must compile with the codecs' compilers; a JSON Schema ``$ref`` to
  another document is refused without being fetched;
* malformed ``Content-Length`` values, missing, doubled or chunked framing, bodies
  shorter or larger than allowed, deep nesting, odd request lines and targets: each is
  answered with a 4xx ``{"error_code", "message"}``; connections that never finish are
  answered 408 (or closed, if nothing was sent) and their threads end;
* no answer shows the server's paths.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import random
import re
import selectors
import shutil
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from schemas.base import RegisteredSchema, canonical_text
from schemas.codecs import AvroCodec, JsonCodec
from schemas.errors import ConfigError
from schemas.registry import PACKAGED_SCHEMAS, LocalFileRegistry, schema_id_for
from schemas.server import CONTENT_TYPE, RegistryServer

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
_PATIENCE_S = 30.0  # how long a client waits for an answer the server owes at once
_MAX_BODY = 64 * 1024  # the limit the tests serve with: small bodies cross it cheaply
_PROBE_AVRO = {"type": "record", "name": "Probe", "fields": [{"name": "a", "type": "int"}]}
_TWEET = json.loads((PACKAGED_SCHEMAS / "tweet" / "1.json").read_text())


# --- a served sandbox, and raw HTTP against it -------------------------------------------


@dataclass(frozen=True)
class _Answer:
    status: int
    body: Any
    text: str


@dataclass(frozen=True)
class _Served:
    """A registry at ``root``, five directories below ``sandbox`` (which the tests watch)."""

    sandbox: Path
    root: Path
    address: tuple[str, int]

    def send(self, request: bytes, *, half_close: bool = True) -> _Answer:
        with socket.create_connection(self.address, timeout=_PATIENCE_S) as sock:
            with contextlib.suppress(OSError):  # it may answer before reading it all
                sock.sendall(request)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            answer = _parsed(_read_to_end(sock))
        for hidden in {str(self.sandbox), str(self.sandbox.resolve()), str(PACKAGED_SCHEMAS)}:
            assert hidden not in answer.text or hidden.encode() in request  # only echoed
        return answer

    def post(self, target: str, body: Any) -> _Answer:
        return self.send(_request("POST", target, json.dumps(body).encode()))


def _request(method: str, target: str, body: bytes = b"", headers: tuple[str, ...] = ()) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: registry", *headers]
    if body and not any(h.lower().startswith("content-length") for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _read_to_end(sock: socket.socket) -> bytes:
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _parsed(raw: bytes) -> _Answer:
    head, blank, payload = raw.partition(b"\r\n\r\n")
    assert blank, f"no HTTP answer, only {raw[:120]!r}"
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    assert headers.get("content-type") == CONTENT_TYPE, raw[:300]
    text = payload.decode("utf-8")
    answer = _Answer(int(status_line.split(" ", 2)[1]), json.loads(text), text)
    assert answer.status < 500, answer
    if answer.status >= 400:
        assert isinstance(answer.body.get("error_code"), int), answer
        assert isinstance(answer.body.get("message"), str), answer
    return answer


@contextlib.contextmanager
def _serving(base: Path, **limits: Any) -> Iterator[_Served]:
    """A writable server over a copy of the packaged subjects, inside a fresh sandbox."""
    sandbox = base / "sandbox"
    root = sandbox / "a" / "b" / "c" / "d" / "registry"
    for subject in ("tweet", "vehicle_telemetry"):
        shutil.copytree(PACKAGED_SCHEMAS / subject, root / subject)
    registry = LocalFileRegistry(root)
    with RegistryServer(registry, writable=True, **limits) as server:
        url = urlsplit(server.url)
        yield _Served(sandbox, root, (str(url.hostname), int(url.port or 0)))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Served]:
    with _serving(tmp_path_factory.mktemp("hardening"), max_body_bytes=_MAX_BODY) as it:
        yield it


def _tree(top: Path) -> dict[str, bytes | None]:
    """Every path under ``top``: a file's bytes, None for a directory."""
    return {
        p.relative_to(top).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in top.rglob("*")
    }


def _assert_confined(served: _Served, before: dict[str, bytes | None], answer: _Answer) -> None:
    """Nothing that was there changed; anything new is a version file of one subject."""
    after = _tree(served.sandbox)
    assert [p for p, data in before.items() if after.get(p, b"<gone>") != data] == []
    root = PurePosixPath(served.root.relative_to(served.sandbox).as_posix())
    for path in sorted(set(after) - set(before)):
        assert answer.status == 200, (path, answer)
        inside = PurePosixPath(path).relative_to(root).parts  # ValueError: outside the root
        if after[path] is None:
            assert len(inside) == 1, path
        else:
            assert len(inside) == 2 and re.fullmatch(r"[1-9][0-9]*\.(json|avsc)", inside[1])
    reloaded = LocalFileRegistry(served.root)  # the directory still loads
    if answer.status == 200:
        assert reloaded.by_id(answer.body["id"])


# --- subject names -----------------------------------------------------------------------

_TRAVERSALS = [".", "..", "/", "%2F", "%2f", "%2E", "%2e", "%2E%2E", ".%2E", "%252F", "%252E"]
_CONTROLS = ["\\", "%5C", "%5c", "%00", "%0A", "%0D", "%09", "%7F", "%C2%85", "%C2%9F"]
_LOOKALIKES = ["%C0%AE", "%E2%80%AE", "%EF%BC%8F", "%E2%88%95", "~", ":", ":.ctx:", "%20"]
_NAMES = ["x", "tweet", "vehicle_telemetry", "config.json", "1.json", "__GLOBAL"]
_PATHISH = st.sampled_from([*_TRAVERSALS, *_CONTROLS, *_LOOKALIKES, *_NAMES])
_ENCODED = st.text(st.characters(exclude_categories=["Cs"]), max_size=6).map(
    lambda text: quote(text, safe="")
)
_RAW_UNICODE = st.text(  # sent as UTF-8 bytes in the request line, unencoded
    st.characters(min_codepoint=0xA1, exclude_categories=["Cs", "Zs", "Zl", "Zp"]),
    min_size=1,
    max_size=3,
)
_LONG = st.integers(60, 300).map(lambda n: "n" * n)
_SUBJECT_TARGETS = st.lists(
    st.one_of(_PATHISH, _PATHISH, _ENCODED, _RAW_UNICODE, _LONG), min_size=1, max_size=6
).map("".join)
_BODIES = st.sampled_from(
    [
        {"schema": json.dumps(_PROBE_AVRO)},
        {"schema": json.dumps({**_TWEET, "description": "changed"}), "schemaType": "JSON"},
        {"schema": json.dumps({"type": "string"}), "schemaType": "AVRO"},
    ]
)


def _assume_a_server_without_guards_stays_in_the_sandbox(served: _Served, target: str) -> None:
    """Keeps the examples harmless when run against the unguarded server (HEAD before #17).

    That server wrote ``root / unquote(subject) / "1.avsc"``; examples that would take
    it above the sandbox are skipped.
    """
    if any(c in target for c in "/?#"):
        return  # not routed to a subject
    subject = unquote(target.encode().decode("latin-1"))
    if "\x00" not in subject:
        written = Path(os.path.normpath(served.root / subject / "1.avsc"))
        assume(written.is_relative_to(served.sandbox))


@FUZZ
@given(target=_SUBJECT_TARGETS, body=_BODIES)
@example(target="..%2F..%2Fx", body={"schema": json.dumps(_PROBE_AVRO)})
@example(target=".", body={"schema": json.dumps(_PROBE_AVRO)})
@example(target="a%2Fb", body={"schema": json.dumps(_PROBE_AVRO)})
@example(
    target=".%2Ftweet",
    body={"schema": json.dumps({**_TWEET, "description": "changed"}), "schemaType": "JSON"},
)
def test_no_subject_name_writes_outside_its_directory_or_changes_a_file(
    served: _Served, target: str, body: dict[str, str]
) -> None:
    _assume_a_server_without_guards_stays_in_the_sandbox(served, target)
    before = _tree(served.sandbox)
    answer = served.post(f"/subjects/{target}/versions", body)
    event(f"answered {answer.status} {answer.body.get('error_code', '')}")
    _assert_confined(served, before, answer)
    subject = unquote(target.encode().decode("latin-1"))  # as http.server reads the line
    if answer.status == 200 and subject not in ("tweet", "vehicle_telemetry"):
        assert (served.root / subject).is_dir()


def _subject_with_the_id_of(taken: str, version: int) -> str:
    """A valid subject name whose version 1 gets the schema id of ``taken``/``version``.

    CRC-32 is linear over XOR, so choosing the low four bits of ten characters from
    ``@A..O`` (40 unknowns) solves the 32 equations.
    """
    base = "clash-" + "@" * 10

    def crc(name: str) -> int:
        return zlib.crc32(f"{name}/1".encode())

    flips = [(i, bit) for i in range(6, 16) for bit in range(4)]
    columns = [crc(base[:i] + chr(0x40 | 1 << bit) + base[i + 1 :]) ^ crc(base) for i, bit in flips]
    basis: dict[int, tuple[int, int]] = {}  # leading bit -> (vector, which flips make it)
    for index, vector in enumerate(columns):
        combo = 1 << index
        while vector and vector.bit_length() in basis:
            other, other_combo = basis[vector.bit_length()]
            vector, combo = vector ^ other, combo ^ other_combo
        if vector:
            basis[vector.bit_length()] = (vector, combo)
    want, combo = zlib.crc32(f"{taken}/{version}".encode()) ^ crc(base), 0
    while want:
        vector, vector_combo = basis[want.bit_length()]
        want, combo = want ^ vector, combo ^ vector_combo
    chars = list(base)
    for index, (i, bit) in enumerate(flips):
        if combo >> index & 1:
            chars[i] = chr(ord(chars[i]) ^ 1 << bit)
    return "".join(chars)


@pytest.mark.parametrize(
    "taken", [("tweet", 1), ("vehicle_telemetry", 1), ("vehicle_telemetry", 2)]
)
def test_a_subject_whose_schema_id_is_taken_is_refused_before_writing(
    served: _Served, taken: tuple[str, int]
) -> None:
    subject = _subject_with_the_id_of(*taken)
    assert schema_id_for(subject, 1) == schema_id_for(*taken)
    before = _tree(served.sandbox)
    answer = served.post(f"/subjects/{subject}/versions", {"schema": json.dumps(_PROBE_AVRO)})
    assert (answer.status, answer.body.get("error_code")) == (422, 42208)
    _assert_confined(served, before, answer)
    assert not (served.root / subject).exists()


# --- versions are immutable ----------------------------------------------------------------


def _reordered(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _reordered(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_reordered(v, rng) for v in value]
    return value


_PACKAGED = LocalFileRegistry()
_PACKAGED_VERSIONS = [e for s in _PACKAGED.subjects() for e in _PACKAGED.history(s)]


@FUZZ
@given(
    entry=st.sampled_from(_PACKAGED_VERSIONS),
    change=st.sampled_from([None, "doc", "description"]),
    seed=st.integers(0, 2**32),
    indent=st.sampled_from([None, 0, 2, "\t"]),
)
def test_a_posted_schema_never_rewrites_a_version(
    served: _Served,
    entry: RegisteredSchema,
    change: str | None,
    seed: int,
    indent: int | str | None,
) -> None:
    rng = random.Random(seed)
    schema = _reordered(entry.schema, rng)
    if change is not None:
        schema[change] = f"changed {rng.random()}"
    history = LocalFileRegistry(served.root).history(entry.subject)
    before = _tree(served.sandbox)
    answer = served.post(
        f"/subjects/{entry.subject}/versions",
        {"schema": json.dumps(schema, indent=indent), "schemaType": entry.schema_type},
    )
    _assert_confined(served, before, answer)
    same = [e for e in history if e.format == entry.format and e.text == canonical_text(schema)]
    if same:
        assert answer.status == 200 and answer.body["id"] == same[0].schema_id
        assert _tree(served.sandbox) == before
    elif answer.status == 200:
        written = LocalFileRegistry(served.root).by_id(answer.body["id"])
        assert (written.subject, written.version) == (entry.subject, history[-1].version + 1)
        assert written.schema == schema
    else:
        assert (answer.status, answer.body.get("error_code")) == (409, 409), answer


@pytest.mark.parametrize("suffix", [".json", ".avsc"])
def test_a_version_file_the_server_does_not_serve_is_never_overwritten(
    tmp_path: Path, suffix: str
) -> None:
    with _serving(tmp_path) as served:
        planted = served.root / "tweet" / f"2{suffix}"
        planted.write_text('{"planted": "after the server started"}\n')
        before = _tree(served.sandbox)
        answer = served.post(
            "/subjects/tweet/versions",
            {"schema": json.dumps({**_TWEET, "description": "v2"}), "schemaType": "JSON"},
        )
        assert (answer.status, answer.body.get("error_code")) == (422, 42205)
        assert "tweet/2" in answer.body["message"]
        assert _tree(served.sandbox) == before


# --- a new version must compile -----------------------------------------------------------

_AVRO_WORDS = ["record", "enum", "array", "map", "fixed", "int", "string", "null", "R", "a"]
_JSON_WORDS = ["object", "integer", "number", "boolean", "nonsense", "#", "#/definitions/a"]
_AVRO_KEYS = ["type", "name", "fields", "items", "values", "symbols", "size", "default"]
_JSON_KEYS = ["properties", "required", "definitions", "$ref", "minimum", "enum", "not"]
_SCHEMA_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(_AVRO_WORDS + _JSON_WORDS),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(_AVRO_KEYS + _JSON_KEYS), inner, max_size=4)
    ),
    max_leaves=8,
)


def _compiles(schema: Any, schema_type: str | None) -> bool:
    """Whether the codecs compile it (the words above hold no URL a $ref could fetch)."""
    try:
        if schema_type == "JSON":
            JsonCodec(copy.deepcopy(schema))
        else:
            AvroCodec(copy.deepcopy(schema))
    except Exception:
        return False
    return True


@FUZZ
@given(schema=_SCHEMA_LIKE, schema_type=st.sampled_from([None, "AVRO", "JSON"]))
@example(schema={"type": "nonsense"}, schema_type=None)
@example(schema={"type": "nonsense"}, schema_type="JSON")
@example(schema={"type": "record", "name": "R"}, schema_type="AVRO")
@example(schema={"type": "object", "properties": []}, schema_type="JSON")
@example(schema={"$ref": "#/definitions/missing"}, schema_type="JSON")
@example(schema=_PROBE_AVRO, schema_type=None)
def test_a_new_version_is_written_only_if_it_compiles(
    served: _Served, schema: Any, schema_type: str | None
) -> None:
    subject = f"compile-{uuid.uuid4().hex[:12]}"
    body = {"schema": json.dumps(schema)}
    if schema_type is not None:
        body["schemaType"] = schema_type
    before = _tree(served.sandbox)
    answer = served.post(f"/subjects/{subject}/versions", body)
    event(f"answered {answer.status}")
    _assert_confined(served, before, answer)
    if _compiles(schema, schema_type):
        assert answer.status == 200, answer
    else:
        assert (answer.status, answer.body.get("error_code")) == (422, 42201), answer
        assert not (served.root / subject).exists()


def test_a_json_schema_ref_to_another_document_is_refused_unread(served: _Served) -> None:
    outside = served.sandbox / "outside.json"
    outside.write_text('{"type": "string", "description": "the server must not read this"}')
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/schema.json"
    with listener:
        for ref in [outside.as_uri(), url, "outside.json", "../../../../outside.json"]:
            for schema in [
                {"$ref": ref},
                {"type": "object", "properties": {"a": {"$ref": ref}}},
                {"$id": url, "properties": {"a": {"$ref": "other.json"}}},
            ]:
                answer = served.post(
                    f"/subjects/ref-{uuid.uuid4().hex[:8]}/versions",
                    {"schema": json.dumps(schema), "schemaType": "JSON"},
                )
                assert (answer.status, answer.body.get("error_code")) == (422, 42201), answer
                assert "must not read" not in answer.text
        with pytest.raises(BlockingIOError):  # nobody called while the server compiled
            listener.accept()


# --- framing: lengths, bodies, nesting, request lines --------------------------------------

_NOT_A_NUMBER = st.one_of(
    st.integers(max_value=-1).map(str),
    st.sampled_from(["", " ", "+5", "0x10", "1e3", "1_0", "5,5", "5 5", "-0", "\u0663", "\uff11"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF), min_size=1, max_size=10),
).filter(lambda value: not re.fullmatch(r"[0-9]+", value.strip(" \t")))
_GOOD_BODY = json.dumps({"schema": json.dumps(_PROBE_AVRO)}).encode()


@st.composite
def _bad_framing(draw: st.DrawFn) -> tuple[tuple[str, ...], bytes, int]:
    """(headers, body, the status owed) of a POST whose body cannot be taken as sent."""
    kind = draw(st.sampled_from(["bad", "two", "chunked", "missing", "large", "short"]))
    body = draw(st.sampled_from([_GOOD_BODY, b"", b"{}", b"x" * 100]))
    if kind == "bad":
        return (f"Content-Length: {draw(_NOT_A_NUMBER)}",), body, 400
    if kind == "two":
        first = draw(st.integers(0, len(body)))
        second = draw(st.integers(0, 10**6).filter(lambda n: n != first))
        return (f"Content-Length: {first}", f"Content-Length: {second}"), body, 400
    if kind == "chunked":
        maybe_length = draw(st.sampled_from([(), (f"Content-Length: {len(body)}",)]))
        return ("Transfer-Encoding: chunked", *maybe_length), body, 411
    if kind == "missing":
        return (), body, 411
    if kind == "large":
        return (f"Content-Length: {draw(st.integers(_MAX_BODY + 1, 10**18))}",), body, 413
    declared = draw(st.integers(len(body) + 1, _MAX_BODY))
    return (f"Content-Length: {declared}",), body, 400


@FUZZ
@given(framing=_bad_framing())
@example(framing=(("Content-Length: -1",), _GOOD_BODY, 400))
@example(framing=(("Content-Length: abc",), _GOOD_BODY, 400))
@example(framing=(("Content-Length: 500",), _GOOD_BODY, 400))
def test_a_body_that_cannot_be_taken_as_sent_is_refused(
    served: _Served, framing: tuple[tuple[str, ...], bytes, int]
) -> None:
    headers, body, status = framing
    raw = _request("POST", "/subjects/framing/versions", b"", headers) + body
    answer = served.send(raw)  # sent whole, then the write side closed
    assert (answer.status, answer.body.get("error_code")) == (status, status), answer


@FUZZ
@given(
    depth=st.integers(300, 60_000),
    opener=st.sampled_from(["[", '{"a":']),
    inside=st.sampled_from(["schema", "body"]),
    schema_type=st.sampled_from(["AVRO", "JSON"]),
)
@example(depth=5000, opener="[", inside="schema", schema_type="AVRO")
@example(depth=5000, opener="[", inside="body", schema_type="AVRO")
def test_deeply_nested_documents_are_answered(
    served: _Served, depth: int, opener: str, inside: str, schema_type: str
) -> None:
    nested = opener * depth + "1" + ("]" if opener == "[" else "}") * depth
    if inside == "schema":
        body = json.dumps({"schema": nested, "schemaType": schema_type})
    else:  # the schema is not JSON: refused whether or not the body's nesting is read
        body = f'{{"schema": "[", "schemaType": "{schema_type}", "x": {nested}}}'
    subject = f"deep-{uuid.uuid4().hex[:12]}"
    answer = served.send(_request("POST", f"/subjects/{subject}/versions", body.encode()))
    assert answer.status in (400, 413, 422), answer
    assert not (served.root / subject).exists()


_METHODS = st.from_regex(r"[A-Z]{1,10}", fullmatch=True).filter(
    lambda method: method not in ("GET", "POST", "PUT", "DELETE")
)
_BAD_REQUEST_LINES = st.one_of(
    _METHODS.map(lambda method: f"{method} /subjects HTTP/1.1"),
    st.sampled_from(
        [
            "GET /subjects HTTP/2.0",
            "GET /subjects HTTP/1.x",
            "GET /subjects FOO/1.0",
            "GET",
            "GET /a /b HTTP/1.1",
            "POST /subjects/x",
            "\x00\x01",
            "",
            "GET //[x/subjects HTTP/1.1",
            "GET " + "/x" * 40_000 + " HTTP/1.1",
        ]
    ),
)


@FUZZ
@given(line=_BAD_REQUEST_LINES, extra_headers=st.sampled_from([0, 1, 150]))
@example(line="FOO /subjects HTTP/1.1", extra_headers=0)
@example(line="GET /subjects HTTP/1.1", extra_headers=150)
def test_protocol_errors_are_answered_as_json_4xx(
    served: _Served, line: str, extra_headers: int
) -> None:
    headers = "".join(f"X-Extra-{n}: 1\r\n" for n in range(extra_headers))
    answer = served.send(f"{line}\r\n{headers}\r\n".encode("latin-1"))
    assert 400 <= answer.status < 500, answer


_SEGMENTS = st.one_of(
    st.sampled_from(["latest", "-1", "0", "1", "2", "\u00b2", "\u0663", "2147483648"])
    | st.sampled_from(["99999999999999999999", "%C2%B2", "%00", "..", "%2E%2E", "tweet"]),
    _ENCODED,
)


@FUZZ
@given(
    template=st.sampled_from(
        [
            "/subjects/{}/versions/{}",
            "/subjects/{}/versions/{}/schema",
            "/schemas/ids/{}{}",
            "/config/{}{}",
            "/subjects/{}/versions{}",
            "/mode/{}{}",
            "/schemas/ids/{}/{}",
        ]
    ),
    first=st.one_of(st.just("tweet"), _SUBJECT_TARGETS, _SEGMENTS),
    second=_SEGMENTS,
)
@example(template="/subjects/{}/versions/{}", first="tweet", second="%C2%B2")  # "²"
def test_any_request_target_is_answered_as_json(
    served: _Served, template: str, first: str, second: str
) -> None:
    target = template.format(first, second)
    answer = served.send(f"GET {target} HTTP/1.1\r\n\r\n".encode())
    assert answer.status in (200, 400, 404, 422), answer


# --- connections that never finish -----------------------------------------------------------


def _answers(socks: list[socket.socket], patience_s: float) -> list[bytes]:
    """Everything each socket receives until the server closes it (or patience ends)."""
    received = {s: bytearray() for s in socks}
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + patience_s
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=deadline - time.monotonic()):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                received[sock] += chunk
                if not chunk:
                    selector.unregister(sock)
        assert not selector.get_map(), "the server never ended some connections"
    return [bytes(received[s]) for s in socks]


def _drip(sock: socket.socket, patience_s: float) -> bytes:
    """Sends a byte of body whenever 0.2 s pass without an answer; returns the answer."""
    deadline = time.monotonic() + patience_s
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                return _read_to_end(sock)
            sock.send(b" ")
    raise AssertionError("a client sending a byte now and then held the connection")


_NEVER_FINISHED = {  # what a client sends before going quiet, and the status owed
    "short body": (
        _request("POST", "/subjects/s/versions", _GOOD_BODY[:10], ("Content-Length: 99",)),
        408,
    ),
    "negative length": (
        _request("POST", "/subjects/s/versions", b"", ("Content-Length: -1",)) + b"{",
        400,
    ),
    "text length": (
        _request("POST", "/subjects/s/versions", b"", ("Content-Length: ten",)) + b"{",
        400,
    ),
    "half a header": (b"POST /subjects/s/versions HTTP/1.1\r\nContent-Le", 408),
    "half a request line": (b"POST /subjects/s/ver", 408),
    "nothing": (b"", None),
}


def test_connections_that_never_finish_are_answered_and_their_threads_end(
    tmp_path: Path,
) -> None:
    with _serving(tmp_path, request_timeout_s=1.0) as served:
        baseline = set(threading.enumerate())
        kinds = sorted(_NEVER_FINISHED) * 20
        socks = [socket.create_connection(served.address, timeout=_PATIENCE_S) for _ in kinds]
        try:
            for sock, kind in zip(socks, kinds, strict=True):
                sock.sendall(_NEVER_FINISHED[kind][0])  # and the write side stays open
            with socket.create_connection(served.address, timeout=_PATIENCE_S) as dripping:
                dripping.sendall(_request("POST", "/s", b"", ("Content-Length: 1000",)))
                assert _parsed(_drip(dripping, _PATIENCE_S)).status == 408
            for kind, raw in zip(kinds, _answers(socks, _PATIENCE_S), strict=True):
                status = _NEVER_FINISHED[kind][1]
                if status is None:
                    assert raw == b"", kind  # idle: closed without an answer
                else:
                    assert _parsed(raw).status == status, (kind, raw[:200])
        finally:
            for sock in socks:
                sock.close()
        deadline = time.monotonic() + _PATIENCE_S
        for thread in set(threading.enumerate()) - baseline:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        assert [t for t in threading.enumerate() if t not in baseline] == []


# --- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize("packaged", [True, False], ids=["packaged", "directory"])
def test_the_read_only_refusal_does_not_show_where_the_files_are(
    tmp_path: Path, packaged: bool
) -> None:
    if packaged:
        registry = LocalFileRegistry()
    else:
        shutil.copytree(PACKAGED_SCHEMAS / "tweet", tmp_path / "registry" / "tweet")
        registry = LocalFileRegistry(tmp_path / "registry")
    with RegistryServer(registry) as server:
        url = urlsplit(server.url)
        for subject in ["tweet", "fresh"]:
            body = {"schema": json.dumps({**_TWEET, "description": "new"}), "schemaType": "JSON"}
            with socket.create_connection((str(url.hostname), int(url.port or 0))) as sock:
                sock.sendall(
                    _request("POST", f"/subjects/{subject}/versions", json.dumps(body).encode())
                )
                answer = _parsed(_read_to_end(sock))
            assert (answer.status, answer.body.get("error_code")) == (422, 42205)
            for shown in {str(registry.root), str(registry.root.resolve()), str(tmp_path)}:
                assert shown not in answer.text


@pytest.mark.parametrize(
    ("limits", "named"),
    [({"max_body_bytes": 0}, "max_body_bytes"), ({"request_timeout_s": -1.0}, "request_timeout_s")],
)
def test_limits_must_be_positive(limits: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=f"{named}: must be positive"):
        RegistryServer(LocalFileRegistry(), **limits)
