"""``dataplane compact``: small files merged, rows and exactly-once progress unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from beam_pipelines import sentiment
from beam_pipelines.publish import publish
from beam_pipelines.tweetgen import generate_tweets
from runners.cli import main as dataplane

pytestmark = [pytest.mark.integration]


def _run(bootstrap: str, topic: str, lake: Path) -> Any:
    return sentiment.run(
        [
            f"--source=kafka://{bootstrap}/{topic}",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            "--bounded",
            "--batch_size=50",  # many small commits, as a streaming run makes
        ]
    )


def _ids(uri: Path) -> list[str]:
    return sorted(DeltaTable(str(uri)).to_pyarrow_table()["_record_id"].to_pylist())


def test_compaction_merges_files_and_resumes_stay_exactly_once(
    kafka_bootstrap: str, new_topic: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topic = new_topic(partitions=2)
    uri = f"kafka://{kafka_bootstrap}/{topic}"
    publish(uri, generate_tweets(400, bad_ratio=0.05, seed=1), partitions=2)
    _run(kafka_bootstrap, topic, tmp_path)
    table = tmp_path / "tweets"
    before = _ids(table)
    files_before = len(DeltaTable(str(table)).file_uris())
    assert files_before >= 4

    assert dataplane(["compact", str(table)]) == 0
    assert f"{files_before} files → 1" in capsys.readouterr().out
    assert _ids(table) == before  # same rows

    again = _run(kafka_bootstrap, topic, tmp_path)  # nothing new: resumes after the frontier
    assert again.records_in == 0 and _ids(table) == before
    publish(uri, generate_tweets(200, bad_ratio=0.05, seed=2), partitions=2)
    _run(kafka_bootstrap, topic, tmp_path)
    after = _ids(table)
    assert len(after) == len(set(after)) == len(before) + 190


def test_compact_names_what_is_wrong(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dataplane(["compact", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.strip() == f"error: TABLE: no Delta table at {tmp_path}/none"
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(tmp_path / "t"), pa.table({"n": [1]}))
    assert dataplane(["compact", str(tmp_path / "t"), "--retention_hours", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --retention_hours: 0 h is below the table")
