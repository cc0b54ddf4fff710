"""The sentiment pipeline writes the same Delta rows on every local runner setup.

Compared with the in-process runner: PortableRunner against Beam's Python job
service (LOOPBACK, the Fn API path Flink and Dataflow Runner v2 take), and the
direct runner with 2 worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from beam_pipelines import sentiment
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from tests.helpers import read_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def job_endpoint() -> Iterator[str]:
    from runners.local.job_service import LocalJobService

    with LocalJobService(start_timeout_s=60) as jobs:
        yield jobs.endpoint


@pytest.fixture(scope="module")
def tweets(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("tweets") / "tweets.jsonl"
    publish(f"file://{path}", generate_tweets(300, bad_ratio=0.1))
    return f"file://{path}"


@pytest.fixture(scope="module")
def direct_lake(tweets: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_into(tmp_path_factory.mktemp("direct"), tweets, ["--runner=direct"])


def run_into(lake: Path, source: str, runner_flags: list[str]) -> Path:
    flags = [f"--source={source}", f"--output={lake}/tweets", f"--dlq={lake}/dead_letters"]
    summary = sentiment.run([*flags, "--bounded", *runner_flags])
    assert summary.records_in > 0
    return lake


def canonical(table: pa.Table, *drop: str) -> list[dict]:
    kept = table.drop_columns(list(drop)) if drop else table
    return sorted(kept.to_pylist(), key=lambda row: row["_record_id"])


def assert_same_rows(lake: Path, direct: Path) -> None:
    assert canonical(read_table(f"{lake}/tweets")) == canonical(read_table(f"{direct}/tweets"))
    assert canonical(read_table(f"{lake}/dead_letters"), "failed_at_ms") == canonical(
        read_table(f"{direct}/dead_letters"), "failed_at_ms"
    )
    assert read_table(f"{direct}/tweets").num_rows > 250


def test_portable_runner_writes_the_same_rows_as_direct(
    job_endpoint: str, tweets: str, direct_lake: Path, tmp_path: Path
) -> None:
    flags = ["--runner=portable", f"--job_endpoint={job_endpoint}", "--environment_type=LOOPBACK"]
    assert_same_rows(run_into(tmp_path, tweets, flags), direct_lake)


def test_two_worker_processes_write_the_same_rows_as_one(
    tweets: str, direct_lake: Path, tmp_path: Path
) -> None:
    flags = ["--runner=direct", "--direct_num_workers=2", "--direct_running_mode=multi_processing"]
    assert_same_rows(run_into(tmp_path, tweets, flags), direct_lake)
