"""Session fixtures: a real Kafka-protocol broker (or yours, via KAFKA_BOOTSTRAP_SERVERS).

Some tests need a service that ``make install`` cannot always provide: kinesalite (npm),
the Pub/Sub emulator (a Debian package) and the VADER ground-truth corpora (``../shared``).
Where one is missing its tests skip, and the run ends by naming each missing service
and how to get it. With ``DATAPLANE_REQUIRE_SERVICES=1`` (``.ci/run`` sets it) they fail
instead, and so does any other test that would skip: nothing is skipped quietly in CI.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

GROUND_TRUTH = Path(
    os.environ.get("DATAPLANE_GROUND_TRUTH")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "vader_ground_truth"
)
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
        "install Node.js and npm, then `make install` (it runs `npm install --prefix .venv "
        "kinesalite@3.3.3`); or set KINESALITE_BIN to a kinesalite executable",
    ),
    "pubsub": Service(
        "the Pub/Sub emulator",
        "`apt-get install google-cloud-cli-pubsub-emulator` (Google Cloud CLI's Debian "
        "repository; needs Java); or set PUBSUB_EMULATOR_BIN to its cloud-pubsub-emulator script",
    ),
    "ground_truth": Service(
        "the VADER ground-truth corpora",
        f"put vaderSentiment's *_GroundTruth.txt files in {GROUND_TRUTH} "
        "(../shared/data/vader_ground_truth beside the clone), or set DATAPLANE_GROUND_TRUTH "
        "to their directory",
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
        f"(CI runs with {REQUIRE_SERVICES}=1, where a missing service fails these tests.)"
    )


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a broker for the session: $KAFKA_BOOTSTRAP_SERVERS or a local Tansu."""
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing
        return
    from runners.services import LocalKafkaBroker

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
def ground_truth_dir() -> Path:
    """The VADER ground-truth corpora (``*_GroundTruth.txt``)."""
    if not any(GROUND_TRUTH.glob("*_GroundTruth.txt")):
        service_missing("ground_truth", f"no *_GroundTruth.txt in {GROUND_TRUTH}")
    return GROUND_TRUTH


@pytest.fixture(scope="session")
def registry_url() -> Iterator[str]:
    """A Confluent-compatible REST registry serving the packaged schemas (read-only)."""
    from schemas.server import RegistryServer

    with RegistryServer() as server:
        yield server.url


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
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def moto_endpoint(aws_env: None) -> Iterator[str]:
    """A moto server (Kinesis, S3, ...) for the session."""
    from runners.services import MotoServer

    with MotoServer() as server:
        yield server.endpoint_url


@pytest.fixture(scope="session")
def kinesalite_endpoint(aws_env: None) -> Iterator[str]:
    """A kinesalite server for the session; skips where kinesalite is not installed."""
    from runners.services import LocalKinesalite, kinesalite_binary

    if not _installed(kinesalite_binary()):
        service_missing("kinesalite", "kinesalite is not installed (KINESALITE_BIN, .venv, PATH)")
    with LocalKinesalite() as server:
        yield server.endpoint_url


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """A Pub/Sub emulator for the session (PUBSUB_EMULATOR_HOST set); skips where absent."""
    from runners.services import LocalPubSubEmulator, pubsub_emulator_binary

    if not _installed(pubsub_emulator_binary()):
        service_missing("pubsub", "google-cloud-cli-pubsub-emulator is not installed")
    saved = os.environ.get("PUBSUB_EMULATOR_HOST")
    with LocalPubSubEmulator(start_timeout_s=60) as emulator:
        os.environ["PUBSUB_EMULATOR_HOST"] = emulator.host
        yield emulator.host
    if saved is None:
        os.environ.pop("PUBSUB_EMULATOR_HOST", None)
    else:
        os.environ["PUBSUB_EMULATOR_HOST"] = saved


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """A GCS emulator with bucket ``lake`` for the session; STORAGE_EMULATOR_HOST points at it."""
    from runners.services import LocalGcsEmulator

    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    with LocalGcsEmulator(bucket="lake") as emulator:
        os.environ["STORAGE_EMULATOR_HOST"] = emulator.endpoint_url
        yield emulator.endpoint_url
    if saved is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = saved


@pytest.fixture(scope="session")
def streaming_job_service() -> Iterator[str]:
    """Our job service (``dataplane job-service``) for PortableRunner in streaming."""
    from runners.services import LocalJobService

    with LocalJobService(streaming=True, start_timeout_s=60) as jobs:
        yield jobs.endpoint


@pytest.fixture(params=["local", "portable"])
def runner_flags(request: pytest.FixtureRequest) -> list[str]:
    """The local streaming runner, or PortableRunner on our job service (LOOPBACK)."""
    if request.param == "local":
        return ["--runner=direct"]
    endpoint = request.getfixturevalue("streaming_job_service")
    return ["--runner=portable", f"--job_endpoint={endpoint}", "--environment_type=LOOPBACK"]
