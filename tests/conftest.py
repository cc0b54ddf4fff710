"""Session fixtures: a real Kafka-protocol broker (or yours, via KAFKA_BOOTSTRAP_SERVERS)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

GROUND_TRUTH = Path(__file__).resolve().parents[2] / "shared" / "data" / "vader_ground_truth"


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
    if not GROUND_TRUTH.is_dir():
        pytest.skip(f"VADER ground-truth corpora not found at {GROUND_TRUTH}")
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

    if kinesalite_binary() is None:
        pytest.skip("kinesalite is not installed (needs npm; `make install` adds it)")
    with LocalKinesalite() as server:
        yield server.endpoint_url


@pytest.fixture(scope="session")
def pubsub_emulator() -> Iterator[str]:
    """A Pub/Sub emulator for the session (PUBSUB_EMULATOR_HOST set); skips where absent."""
    from runners.services import LocalPubSubEmulator, pubsub_emulator_binary

    if pubsub_emulator_binary() is None:
        pytest.skip("the Pub/Sub emulator (google-cloud-cli-pubsub-emulator) is not installed")
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
