"""Fixtures of this project's own tests, on top of the ``dataplane`` pytest plugin.

The broker, topics, registry, emulators and the no-quiet-skips rule come from
``runners/pytest_plugin.py`` (what users get with ``beam-dataplane[testing]``). Some tests
need a service that ``make install`` cannot always provide: kinesalite (npm), the Pub/Sub
emulator (a Debian package) and, here only, the VADER ground-truth corpora (``../shared``).
Where one is missing its tests skip, and the run ends by naming each missing service and
how to get it. With ``DATAPLANE_REQUIRE_SERVICES=1`` (``.ci/run`` sets it) they fail
instead, and so does any other test that would skip: nothing is skipped quietly in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runners.pytest_plugin import SERVICES, Service, service_missing

GROUND_TRUTH = Path(
    os.environ.get("DATAPLANE_GROUND_TRUTH")
    or Path(__file__).resolve().parents[2] / "shared" / "data" / "vader_ground_truth"
)

SERVICES["ground_truth"] = Service(
    "the VADER ground-truth corpora",
    f"put vaderSentiment's *_GroundTruth.txt files in {GROUND_TRUTH} "
    "(../shared/data/vader_ground_truth beside the clone), or set DATAPLANE_GROUND_TRUTH "
    "to their directory",
)


@pytest.fixture
def ground_truth_dir() -> Path:
    """The VADER ground-truth corpora (``*_GroundTruth.txt``)."""
    if not any(GROUND_TRUTH.glob("*_GroundTruth.txt")):
        service_missing("ground_truth", f"no *_GroundTruth.txt in {GROUND_TRUTH}")
    return GROUND_TRUTH


@pytest.fixture(scope="session")
def streaming_job_service() -> Iterator[str]:
    """Our job service (``dataplane job-service``) for PortableRunner in streaming."""
    from runners.local.job_service import LocalJobService

    with LocalJobService(streaming=True, start_timeout_s=60) as jobs:
        yield jobs.endpoint


@pytest.fixture(params=["local", "portable"])
def runner_flags(request: pytest.FixtureRequest) -> list[str]:
    """The local streaming runner, or PortableRunner on our job service (LOOPBACK)."""
    if request.param == "local":
        return ["--runner=direct"]
    endpoint = request.getfixturevalue("streaming_job_service")
    return ["--runner=portable", f"--job_endpoint={endpoint}", "--environment_type=LOOPBACK"]
