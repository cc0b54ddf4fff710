"""``dataplane compact``: small files merged, rows and exactly-once progress unchanged."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from beam_pipelines import sentiment
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from runners.cli.main import main as dataplane
from schemas.errors import ConfigError
from transforms.checkpoint.log import ResumeFrom, TableRef
from transforms.sinks.compaction import (
    LEASE_TXN,
    CompactionSchedule,
    CompactionSkipped,
    ScheduledCompaction,
    compact_table,
)
from transforms.sinks.delta import rows_to_arrow
from transforms.sinks.delta_commit import DeltaCommitter

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
    write_deltalake(str(tmp_path / "t"), pa.table({"n": [1]}))
    assert dataplane(["compact", str(tmp_path / "t"), "--retention_hours", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --retention_hours: 0 h is below the table")


# Compactions racing writers and each other (delta-rs, no pipeline).


def _batch(numbers: range) -> pa.Table:
    rows = [
        {
            "_record_id": f"r{n}",
            "_source": "kafka",
            "_stream": "t",
            "_partition": "0",
            "_position": str(n),
            "_prev_position": str(n - 1) if n else "start",
            "_event_time_ms": 0,
            "n": n,
        }
        for n in numbers
    ]
    return rows_to_arrow(rows, pa.schema([("n", pa.int64())]))


def _small_files(uri: str, files: int) -> None:
    for n in range(files):
        write_deltalake(uri, pa.table({"n": [n]}), mode="append")


def test_delta_rs_lets_two_overlapping_compactions_double_rows(tmp_path: Path) -> None:
    """Why compactions take a lease: this fails once delta-rs refuses the second commit."""
    uri = str(tmp_path / "t")
    _small_files(uri, 3)
    first, second = DeltaTable(uri), DeltaTable(uri)  # both plan on the same version
    first.optimize.compact()
    second.optimize.compact()
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 6  # 3 rows, each twice


def test_a_compaction_skips_while_another_holds_the_lease(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _small_files(uri, 3)

    def lease(until_ms: int) -> None:  # as another compactor takes or gives it back
        table = DeltaTable(uri)
        table.create_write_transaction(
            [],
            mode="append",
            schema=table.schema(),
            commit_properties=CommitProperties(app_transactions=[Transaction(LEASE_TXN, until_ms)]),
        )

    lease(int(time.time() * 1000) + 60_000)
    with pytest.raises(CompactionSkipped, match="another compaction holds the lease"):
        compact_table(uri)
    scheduled = ScheduledCompaction(uri, CompactionSchedule(every_s=1), clock=lambda: 1e9)
    assert scheduled.run_if_due() is None  # skipped, not raised
    assert len(DeltaTable(uri).file_uris()) == 3

    lease(0)
    assert compact_table(uri).files_after == 1
    assert DeltaTable(uri).transaction_version(LEASE_TXN) == 0  # given back
    assert sorted(DeltaTable(uri).to_pyarrow_table()["n"].to_pylist()) == [0, 1, 2]


def test_compactions_racing_two_writers_keep_each_row_once_and_the_progress(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "t")
    batches = [range(n, n + 25) for n in range(0, 1000, 25)]
    done = threading.Event()
    errors: list[BaseException] = []
    outcomes: list[str] = []

    def write(order: list[range]) -> None:  # two runs delivering the same records
        committer = DeltaCommitter(uri, app_id="race")
        try:
            for numbers in order:
                committer.commit(_batch(numbers))
        except BaseException as err:
            errors.append(err)

    def compact() -> None:
        while not done.is_set():
            try:
                compact_table(uri)
                outcomes.append("compacted")
            except CompactionSkipped:
                outcomes.append("skipped")
            except ConfigError:  # no table yet
                time.sleep(0.01)

    writers = [
        threading.Thread(target=write, args=(batches,)),
        threading.Thread(target=write, args=(batches[::2] + batches[1::2],)),
    ]
    compactors = [threading.Thread(target=compact) for _ in range(2)]
    for thread in writers + compactors:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    done.set()
    for thread in compactors:
        thread.join(timeout=120)

    assert not errors
    assert "compacted" in outcomes
    table = DeltaTable(uri)
    numbers = table.to_pyarrow_table(columns=["n"])["n"].to_pylist()
    assert sorted(numbers) == list(range(1000))  # every row, once
    assert table.transaction_version("race-t-0") == 999
    resume = ResumeFrom.of([TableRef(uri, "race")], None)
    assert resume.frontiers("kafka", "t") == {"0": "999"}
