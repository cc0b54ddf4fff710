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
