"""Finding secret strings wherever a run shows or ships them (shared by the secret tests).

* :func:`secret_flags` puts one generated secret through every flag that can carry one;
* :class:`Exposures` records what runners receive: each ``Pipeline.run``'s options
  (as the runner reads them and as display data), every transform's display data,
  the runner API proto, and Dataflow's job request;
* :func:`leaks` finds a secret in text or bytes, also inside base64 + bz2/zlib
  payloads (how Beam ships pickled DoFns and coders in the proto).
"""

from __future__ import annotations

import base64
import bz2
import json
import string
import threading
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.transforms.display import DisplayData
from hypothesis import strategies as st

# Printable, with the characters that matter to parsers (=, :, @, #, $, {, }, %, /, ,, spaces).
_ANY = string.ascii_letters + string.digits + " !#$%&()*+,-./:;<=>?@[]^_`{|}~"
_URL_SAFE = string.ascii_letters + string.digits + "-._~"


def _secret(alphabet: str) -> st.SearchStrategy[str]:
    """Secrets no code or data holds by chance: 16+ characters, mixed classes.

    (Hypothesis also draws strings found in the code under test, metric names and
    the like: those must not pass for secrets.)
    """
    return st.text(alphabet, min_size=16, max_size=40).filter(
        lambda s: (
            s == s.strip()
            and "${" not in s
            and len(set(s)) >= 8
            and any(c.isdigit() for c in s)
            and any(c.isupper() for c in s)
            and any(c.islower() for c in s)
            and any(not c.isalnum() for c in s)
        )
    )


def secret_sets() -> st.SearchStrategy[dict[str, str]]:
    """One secret per carrier; the registry URL's is URL-safe (a userinfo password)."""
    return st.fixed_dictionaries(
        {name: _secret(_URL_SAFE if name == "registry_url" else _ANY) for name, _ in CARRIERS}
    )


# Every carrier of a secret: (name, the flag and setting that carries it).
CARRIERS = [
    ("kafka_sasl_password", "--kafka_config sasl.password=SECRET"),
    ("kafka_oauth_secret", "--kafka_config=sasl.oauthbearer.client.secret=SECRET"),
    ("kafka_file_key_password", "--kafka_config_file: ssl.key.password=SECRET"),
    ("registry_url", "--registry=http://user:SECRET@host:port (with_url_password)"),
    ("registry_basic", "--registry_config basic.auth.user.info=user:SECRET (otherwise)"),
    ("registry_file_token", "--registry_config_file: bearer.auth.token=SECRET"),
    ("aws_secret", "--storage_option=AWS_SECRET_ACCESS_KEY=SECRET"),
    ("aws_token", "--storage_option aws_session_token=SECRET"),
    ("gcs_key", "--storage_option=GOOGLE_SERVICE_ACCOUNT_KEY=SECRET"),
    ("azure_key", "--storage_config_file: AZURE_STORAGE_ACCOUNT_KEY=SECRET"),
    ("s3_secret", "--s3_secret_access_key SECRET"),
    ("s3_token", "--s3_session_token=SECRET"),
]


def carried(secrets: dict[str, str], *, with_url_password: bool) -> dict[str, str]:
    """The secrets :func:`secret_flags` puts on the command line (one registry auth is used)."""
    unused = "registry_basic" if with_url_password else "registry_url"
    return {name: secret for name, secret in secrets.items() if name != unused}


def secret_flags(
    secrets: dict[str, str], registry_url: str, directory: Path, *, with_url_password: bool
) -> list[str]:
    """Flags carrying each of ``secrets`` the way a user gives them.

    The registry client takes a password in the URL or ``basic.auth.user.info``, not
    both: ``with_url_password`` chooses.
    """
    kafka_file = directory / "kafka.properties"
    kafka_file.write_text(f"ssl.key.password={secrets['kafka_file_key_password']}\n")
    storage_file = directory / "storage.properties"
    storage_file.write_text(f"AZURE_STORAGE_ACCOUNT_KEY={secrets['azure_key']}\n")
    registry_file = directory / "registry.properties"
    registry_file.write_text(
        "# the bearer token of the registry\n"
        f"bearer.auth.token = {secrets['registry_file_token']}\n"
        "bearer.auth.logical.cluster=lsrc-1\n"
    )
    host = registry_url.split("://", 1)[1]
    if with_url_password:
        registry = [f"--registry=http://user:{secrets['registry_url']}@{host}"]
    else:
        registry = [
            f"--registry={registry_url}",
            "--registry_config",
            f"basic.auth.user.info=user:{secrets['registry_basic']}",
        ]
    return [
        "--kafka_config",
        f"sasl.password={secrets['kafka_sasl_password']}",
        f"--kafka_config=sasl.oauthbearer.client.secret={secrets['kafka_oauth_secret']}",
        f"--kafka_config_file={kafka_file}",
        *registry,
        "--registry_config=bearer.auth.credentials.source=STATIC_TOKEN",
        f"--registry_config_file={registry_file}",
        f"--storage_option=AWS_SECRET_ACCESS_KEY={secrets['aws_secret']}",
        "--storage_option",
        f"aws_session_token={secrets['aws_token']}",
        f"--storage_option=GOOGLE_SERVICE_ACCOUNT_KEY={secrets['gcs_key']}",
        f"--storage_config_file={storage_file}",
        "--s3_secret_access_key",
        secrets["s3_secret"],
        f"--s3_session_token={secrets['s3_token']}",
    ]


def assert_hidden(
    secrets: dict[str, str], seen: Exposures, caplog: Any, capfd: Any
) -> tuple[str, str]:
    """Fails naming each secret found in what ``seen`` caught, the logs or the output."""
    out, err = capfd.readouterr()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for name, secret in secrets.items():
        where = seen.leaked(secret)
        where += [
            label
            for label, text in (("logs", logged), ("stdout", out), ("stderr", err))
            if leaks(secret, text)
        ]
        assert not where, f"the {name} secret shows in: {', '.join(where)}"
    return out, err


def leaks(secret: str, blob: str | bytes, *, depth: int = 0) -> bool:
    """Whether ``secret`` is in ``blob``, also inside base64, bz2 and zlib payloads in it."""
    data = blob.encode("utf-8", "surrogatepass") if isinstance(blob, str) else blob
    needle = secret.encode()
    if needle in data:
        return True
    if depth >= 3:
        return False
    inflated = _inflate(data)
    if inflated is not None and leaks(secret, inflated, depth=depth + 1):
        return True
    return any(leaks(secret, raw, depth=depth + 1) for raw in _base64_payloads(data))


def _inflate(data: bytes) -> bytes | None:
    """``data`` decompressed as far as it goes, when it is bz2 (Beam's pickles) or zlib.

    Partial output is kept: a payload cut short by the search still shows its start.
    """
    try:
        if data.startswith(b"BZh"):
            return bz2.BZ2Decompressor().decompress(data)
        if data[:1] == b"x":
            return zlib.decompressobj().decompress(data)
    except (OSError, ValueError, EOFError, zlib.error):
        return None
    return None


def _base64_payloads(data: bytes) -> Iterator[bytes]:
    """Decodings of every base64 run in ``data``, at each alignment (a proto's length
    prefix or next field's tag can look like base64 and run into it)."""
    allowed = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
    run = bytearray()
    for byte in [*data, 0]:
        if byte in allowed:
            run.append(byte)
            continue
        if len(run) >= 24:
            for start in range(4):
                chunk = bytes(run[start:]).split(b"=", 1)[0]
                chunk = chunk[: len(chunk) - len(chunk) % 4]
                yield base64.b64decode(chunk)
        run.clear()


@dataclass
class Exposure:
    """What one ``Pipeline.run`` handed its runner, as text and bytes to search."""

    texts: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)

    def leaked(self, secret: str) -> list[str]:
        found = [name for name, text in self.texts.items() if leaks(secret, text)]
        return found + [name for name, blob in self.blobs.items() if leaks(secret, blob)]


class Exposures:
    """Records every ``beam.Pipeline.run`` in the test (install with :meth:`install`)."""

    def __init__(self) -> None:
        self.runs: list[Exposure] = []

    def install(self, monkeypatch: Any) -> Exposures:
        original = beam.Pipeline.run
        exposures = self

        def run(pipeline: beam.Pipeline, *args: Any, **kwargs: Any) -> Any:
            exposure = Exposure()
            exposures.runs.append(exposure)
            _options(exposure, pipeline._options)
            _transforms(exposure, pipeline)
            result = original(pipeline, *args, **kwargs)
            _runner(exposure, pipeline, result)
            return result

        monkeypatch.setattr(beam.Pipeline, "run", run)
        return self

    def leaked(self, secret: str) -> list[str]:
        return [name for exposure in self.runs for name in exposure.leaked(secret)]


def _options(exposure: Exposure, options: Any) -> None:
    every = options.get_all_options(retain_unknown_options=True)
    exposure.texts["options"] = json.dumps(every, default=str, ensure_ascii=False)
    shown = DisplayData.create_from_options(options).items
    exposure.texts["options display data"] = json.dumps(
        [item.get_dict() for item in shown], default=str, ensure_ascii=False
    )


def _transforms(exposure: Exposure, pipeline: beam.Pipeline) -> None:
    shown: list[str] = []

    class Visitor(beam.pipeline.PipelineVisitor):
        def visit_transform(self, node: Any) -> None:
            self._show(node)

        def enter_composite_transform(self, node: Any) -> None:
            self._show(node)

        def _show(self, node: Any) -> None:
            if node.transform is None:
                return
            for item in DisplayData.create_from(node.transform).items:
                shown.append(json.dumps(item.get_dict(), default=str, ensure_ascii=False))

    pipeline.visit(Visitor())
    exposure.texts["transforms' display data"] = "\n".join(shown)
    exposure.blobs["runner API proto"] = pipeline.to_runner_api().SerializeToString()


def _runner(exposure: Exposure, pipeline: beam.Pipeline, result: Any) -> None:
    built = getattr(pipeline.runner, "proto_pipeline", None)
    if built is not None:
        exposure.blobs["the runner's proto"] = built.SerializeToString()
    job = getattr(result, "job", None)
    if job is not None and hasattr(job, "json"):
        text = job.json()
        exposure.texts["Dataflow job request"] = text
        exposure.texts["Dataflow job request (decoded)"] = json.dumps(
            json.loads(text), ensure_ascii=False
        )
        exposure.texts["Dataflow job (str)"] = str(job)


class BasicAuthRegistry:
    """A registry in front of which every request needs one user and password.

    Counts the schema lookups by id (what workers ask for) and the refused requests.
    """

    def __init__(self, upstream: str, user_info: str) -> None:
        expected = "Basic " + base64.b64encode(user_info.encode()).decode()
        self.by_id = self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != expected:
                    proxy.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                proxy.by_id += self.path.startswith("/schemas/ids/")
                with urllib.request.urlopen(upstream + self.path) as answer:
                    body, status = answer.read(), answer.status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
