"""The sentiment pipeline on PortableRunner (Beam's job service, LOOPBACK) equals DirectRunner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from beam_pipelines import sentiment
from beam_pipelines.publish import publish
from beam_pipelines.tweetgen import generate_tweets
from tests.helpers import read_table

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def job_endpoint() -> Iterator[str]:
    from runners.services import LocalJobService

    with LocalJobService(start_timeout_s=60) as jobs:
        yield jobs.endpoint


def canonical(table: pa.Table, *drop: str) -> list[dict]:
    kept = table.drop_columns(list(drop)) if drop else table
    return sorted(kept.to_pylist(), key=lambda row: row["_record_id"])


def test_portable_runner_writes_the_same_rows_as_direct(job_endpoint: str, tmp_path: Path) -> None:
    source = tmp_path / "tweets.jsonl"
    publish(f"file://{source}", generate_tweets(300, bad_ratio=0.1))
    lakes = {}
    for runner in ("direct", "portable"):
        lake = tmp_path / runner
        flags = [
            f"--source=file://{source}",
            f"--output={lake}/tweets",
            f"--dlq={lake}/dead_letters",
            "--bounded",
            f"--runner={runner}",
        ]
        if runner == "portable":
            flags += [f"--job_endpoint={job_endpoint}", "--environment_type=LOOPBACK"]
        summary = sentiment.run(flags)
        assert summary.records_in > 0
        lakes[runner] = lake

    direct, portable = lakes["direct"], lakes["portable"]
    assert canonical(read_table(f"{portable}/tweets")) == canonical(read_table(f"{direct}/tweets"))
    assert canonical(read_table(f"{portable}/dead_letters"), "failed_at_ms") == canonical(
        read_table(f"{direct}/dead_letters"), "failed_at_ms"
    )
    assert read_table(f"{direct}/tweets").num_rows > 250
