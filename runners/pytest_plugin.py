"""pytest fixtures for testing Beam jobs built on beam-dataplane, against real local services.

Installed with ``pip install 'beam-dataplane[testing]'`` and loaded by pytest on its own
(the ``pytest11`` entry point ``dataplane``). Fixtures:

* ``kafka_bootstrap`` (session): a Kafka-protocol broker, the embedded one on a free
  loopback port, or yours with ``KAFKA_BOOTSTRAP_SERVERS``; ``new_topic(partitions=3)``
  makes a fresh topic per call; ``produce(topic, values, ...)`` writes records to it.
* ``schema_registry``: a :class:`~schemas.registry.LocalFileRegistry` over the directory
  named by the ``dataplane_schemas`` ini option or ``--dataplane-schemas`` (the packaged
  schemas by default); ``registry_url`` (session) serves it over Confluent's REST API.
* ``moto_endpoint`` (S3, Kinesis...), ``kinesalite_endpoint``, ``pubsub_emulator`` and
  ``gcs_emulator`` (session): local emulators, each skipping with the reason where it is
  not installed. With ``DATAPLANE_REQUIRE_SERVICES=1`` (for CI) a missing service fails
  its tests instead, and so does any other skip; otherwise the run ends by naming what
  was skipped and how to get it.
* ``read_delta(uri)``: a Delta table read back as a list of row dicts.

Example (a test in a user's suite)::

    def test_my_job(kafka_bootstrap, new_topic, produce, read_delta, tmp_path):
        topic = new_topic(partitions=2)
        produce(topic, [b'{"id": "1", "text": "good"}'])
        my_job.run([f"--source=kafka://{kafka_bootstrap}/{topic}", ...])
        assert len(read_delta(str(tmp_path / "out"))) == 1
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

__all__ = ["SERVICES", "Service", "service_missing", "services_required"]

REQUIRE_SERVICES = "DATAPLANE_REQUIRE_SERVICES"


@dataclass(frozen=True)
class Service:
    """A service some tests need, and how a developer gets it."""

    name: str
    hint: str

    @property
    def tag(self) -> str:
        """How a skip for this service starts (the end-of-run summary groups by it)."""
        return f"needs {self.name}: "


SERVICES = {
    "kinesalite": Service(
        "kinesalite",
        "install Node.js and npm, then `npm install --prefix .venv kinesalite@3.3.3` "
        "(`make install` does); or set KINESALITE_BIN to a kinesalite executable",
    ),
    "pubsub": Service(
        "the Pub/Sub emulator",
        "`apt-get install google-cloud-cli-pubsub-emulator` (Google Cloud CLI's Debian "
        "repository; needs Java); or set PUBSUB_EMULATOR_BIN to its cloud-pubsub-emulator script",
    ),
    "moto": Service("moto", "pip install 'moto[server]' (in beam-dataplane[testing])"),
    "gcs": Service(
        "the GCS emulator", "pip install gcp-storage-emulator (in beam-dataplane[testing])"
    ),
}


def services_required() -> bool:
    """True where a missing service must fail its tests (CI), not skip them."""
    return os.environ.get(REQUIRE_SERVICES, "") not in ("", "0")


def service_missing(key: str, reason: str) -> NoReturn:
    """Skips the test (fails it with ``DATAPLANE_REQUIRE_SERVICES=1``) for a missing service."""
    service = SERVICES[key]
    if services_required():
        pytest.fail(
            f"{service.tag}{reason}; {REQUIRE_SERVICES}=1 requires it. To get it: {service.hint}",
            pytrace=False,
        )
    pytest.skip(f"{service.tag}{reason}")


def _installed(binary: str | None) -> bool:
    """Whether ``binary`` (a path or a command name) names something that can run."""
    return binary is not None and shutil.which(binary) is not None


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("dataplane_schemas", "directory of <subject>/<version>.avsc|json schemas")
    parser.addoption(
        "--dataplane-schemas",
        default=None,
        help="directory of <subject>/<version>.avsc|json schemas for schema_registry",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator:
    """With ``DATAPLANE_REQUIRE_SERVICES=1`` a skipped test is reported as failed."""
    outcome: Any = yield
    report = outcome.get_result()
    if services_required() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_SERVICES}=1: no test may skip, and this one did: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator:
    """With ``DATAPLANE_REQUIRE_SERVICES=1`` a module that skips (importorskip) fails."""
    outcome: Any = yield
    report = outcome.get_result()
    if services_required() and report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_SERVICES}=1: no module may skip, and this one did: {reason}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any) -> Generator:
    """Ends the run (after pytest's short summary) naming each missing service and its fix."""
    yield
    _name_missing_services(terminalreporter)


def _name_missing_services(terminalreporter: Any) -> None:
    skipped: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else "")
        for key, service in SERVICES.items():
            if service.tag in reason:
                skipped[key] = skipped.get(key, 0) + 1
    if not skipped:
        return
    terminalreporter.section("services missing: their tests were skipped")
    for key, count in skipped.items():
        service = SERVICES[key]
        tests = "test" if count == 1 else "tests"
        terminalreporter.write_line(f"{service.name}: {count} {tests} skipped. {service.hint}")
    terminalreporter.write_line(
        f"(With {REQUIRE_SERVICES}=1, as in CI, a missing service fails these tests.)"
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a broker for the session: $KAFKA_BOOTSTRAP_SERVERS or a local one."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    from runners.local.broker import LocalKafkaBroker

    with LocalKafkaBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def new_topic(kafka_bootstrap: str) -> Callable[..., str]:
    """Creates a uniquely named topic: ``new_topic(partitions=3)`` returns its name."""
    from transforms.sources.kafka_admin import ensure_topic

    def create(partitions: int = 3) -> str:
        name = f"t-{uuid.uuid4().hex[:12]}"
        ensure_topic(kafka_bootstrap, name, partitions=partitions)
        return name

    return create


@pytest.fixture
def produce(kafka_bootstrap: str) -> Callable[..., int]:
    """``produce(topic, values, *, key=None, partition=None, timestamp_ms=None)``: writes
    each value (bytes, or None for a tombstone) as a record and waits until all are
    acknowledged; returns how many."""
    from confluent_kafka import Producer

    def send(
        topic: str,
        values: Iterable[bytes | None],
        *,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
    ) -> int:
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "linger.ms": 5})
        extra: dict[str, Any] = {}
        if partition is not None:
            extra["partition"] = partition
        if timestamp_ms is not None:
            extra["timestamp"] = timestamp_ms
        count = 0
        for value in values:
            producer.produce(topic, value=value, key=key, **extra)
            producer.poll(0)
            count += 1
        left = producer.flush(30)
        if left:
            raise AssertionError(f"{left} of {count} records were not acknowledged in 30 s")
        return count

    return send


@pytest.fixture
def read_delta() -> Callable[..., list[dict[str, Any]]]:
    """``read_delta(uri, storage_options=None)``: the table's rows as dicts."""
    from deltalake import DeltaTable

    def read(uri: str, storage_options: dict[str, str] | None = None) -> list[dict[str, Any]]:
        return DeltaTable(uri, storage_options=storage_options).to_pyarrow_table().to_pylist()

    return read


@pytest.fixture
def schema_registry(request: pytest.FixtureRequest) -> Any:
    """The schemas of ``--dataplane-schemas`` / the ``dataplane_schemas`` ini option."""
    from schemas.registry import LocalFileRegistry

    return LocalFileRegistry(_schemas_dir(request.config))


@pytest.fixture(scope="session")
def registry_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A Confluent-compatible REST registry over the same schemas (read-only)."""
    from schemas.registry import LocalFileRegistry
    from schemas.server import RegistryServer

    with RegistryServer(LocalFileRegistry(_schemas_dir(request.config))) as server:
        yield server.url


def _schemas_dir(config: pytest.Config) -> Path | None:
    given = config.getoption("--dataplane-schemas") or config.getini("dataplane_schemas")
    if not given:
        return None
    path = Path(given)
    return path if path.is_absolute() else Path(config.rootpath) / path


@pytest.fixture(scope="session")
def aws_env() -> Iterator[None]:
    """Dummy AWS credentials and region for local emulators (never real accounts)."""
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield
    _restore(saved)


@pytest.fixture(scope="session")
def moto_endpoint(aws_env: None) -> Iterator[str]:
    """A moto server (S3, Kinesis, ...) for the session."""
    if not _importable("moto"):
        service_missing("moto", "moto is not installed")
    from runners.local.aws import MotoServer

    with MotoServer() as server:
        yield server.endpoint_url


@pytest.fixture(scope="session")
def kinesalite_endpoint(aws_env: None) -> Iterator[str]:
    """A kinesalite server for the session; skips where kinesalite is not installed."""
    from runners.local.aws import LocalKinesalite, kinesalite_binary

    if not _installed(kinesalite_binary()):
        service_missing("kinesalite", "kinesalite is not installed (KINESALITE_BIN, .venv, PATH)")
    with LocalKinesalite() as server:
        yield server.endpoint_url


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """A Pub/Sub emulator for the session (PUBSUB_EMULATOR_HOST set); skips where absent."""
    from runners.local.gcp import LocalPubSubEmulator, pubsub_emulator_binary

    if not _installed(pubsub_emulator_binary()):
        service_missing("pubsub", "google-cloud-cli-pubsub-emulator is not installed")
    saved = {"PUBSUB_EMULATOR_HOST": os.environ.get("PUBSUB_EMULATOR_HOST")}
    with LocalPubSubEmulator(start_timeout_s=60) as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        yield emulator.host
    _restore(saved)


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """A GCS emulator with bucket ``lake`` for the session; STORAGE_EMULATOR_HOST points at it."""
    if not _importable("gcp_storage_emulator"):
        service_missing("gcs", "gcp-storage-emulator is not installed")
    from runners.local.gcp import LocalGcsEmulator

    saved = {"STORAGE_EMULATOR_HOST": os.environ.get("STORAGE_EMULATOR_HOST")}
    with LocalGcsEmulator(bucket="lake") as emulator:
        os.environ["STORAGE_EMULATOR_HOST"] = emulator.endpoint_url
        yield emulator.endpoint_url
    _restore(saved)


def _restore(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
