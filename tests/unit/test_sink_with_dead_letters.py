"""WriteWithDeadLetters: the output and dead-letter tables wired for exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from schemas.errors import ConfigError
from tests.helpers import collect
from transforms.checkpoint.group_offsets import CommitGroupOffsets
from transforms.deadletter import dead_letter
from transforms.record import coordinates_of, make_record, originals_of
from transforms.sinks import ResumeFrom, TableRef, arrow_schema_of
from transforms.sources.kafka import ReadFromKafka
from transforms.with_dead_letters import WriteWithDeadLetters

SCHEMA = pa.schema([pa.field("id", pa.string(), nullable=False), ("n", pa.int64())])


def _sink(lake: Path, **kwargs: Any) -> WriteWithDeadLetters:
    return WriteWithDeadLetters(
        str(lake / "out"), str(lake / "dlq"), schema=SCHEMA, app_id="job", **kwargs
    )


def test_the_tables_are_siblings_under_the_app_id_and_its_dlq_suffix(tmp_path: Path) -> None:
    sink = _sink(tmp_path, storage_options={"AWS_REGION": "x"})
    out, dlq = TableRef(str(tmp_path / "out"), "job"), TableRef(str(tmp_path / "dlq"), "job-dlq")
    assert sink.tables == (out, dlq)
    assert sink.resume_from == ResumeFrom((out, dlq), (("AWS_REGION", "x"),))
    assert _sink(tmp_path, resume=False).resume_from is None


def test_a_kafka_source_it_makes_resumes_and_commits_group_offsets(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    read = sink.read_from_uri("kafka://127.0.0.1:9/tweets?group=g", bounded=True)
    assert isinstance(read, ReadFromKafka)
    assert read.display_data()["resume_from"] == f"{tmp_path}/out, {tmp_path}/dlq"
    assert isinstance(sink.group_offsets, CommitGroupOffsets)


def test_a_file_source_it_makes_commits_no_offsets(tmp_path: Path) -> None:
    sink = _sink(tmp_path)
    sink.read_from_uri(f"file://{tmp_path}/*.jsonl")
    assert sink.group_offsets is None


def test_a_source_wired_by_hand_takes_resume_from(tmp_path: Path) -> None:
    from transforms.sources import read_from_uri

    sink = _sink(tmp_path)
    read = read_from_uri("kafka://127.0.0.1:9/t", resume_from=sink.resume_from)
    assert read.display_data()["resume_from"] == f"{tmp_path}/out, {tmp_path}/dlq"
    with pytest.raises(ConfigError, match="resume_from: the sink sets it"):
        sink.read_from_uri("kafka://127.0.0.1:9/t", resume_from=None)


def test_a_subject_gives_the_schema(tmp_path: Path) -> None:
    sink = WriteWithDeadLetters(
        str(tmp_path / "o"), str(tmp_path / "d"), schema="vehicle_telemetry", version=1, app_id="a"
    )
    assert sink.schema == arrow_schema_of("vehicle_telemetry", version=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"output": "", "dead_letters": "/d"}, "output: expected a path or URI, got nothing"),
        ({"output": "/t", "dead_letters": "/t"}, r"dead_letters: must be another table than"),
        ({"app_id": ""}, "app_id: expected a name"),
        ({"schema": "no_such_subject"}, "schema: subject 'no_such_subject'"),
        ({"batch_size": 0}, "batch_size: must be positive, got 0"),
    ],
)
def test_bad_arguments_are_named(args: dict[str, Any], message: str) -> None:
    full: dict[str, Any] = {
        "output": "/o",
        "dead_letters": "/d",
        "schema": SCHEMA,
        "app_id": "a",
        **args,
    }
    with pytest.raises(ConfigError, match=message):
        WriteWithDeadLetters(full.pop("output"), full.pop("dead_letters"), **full)


def _rows_and_letters() -> tuple[list[dict[str, Any]], list[Any]]:
    records = [
        make_record(
            source="kafka",
            stream="t",
            partition=0,
            position=i,
            value=f"v{i}".encode(),
            event_time_ms=i,
            prev_position="start" if i == 0 else str(i - 1),
        )
        for i in range(6)
    ]
    values: list[Any] = [1, 2, "three", 4, None, 6]
    rows = [
        {**coordinates_of(r), **originals_of(r), "id": f"r{i}", "n": values[i]}
        for i, r in enumerate(records)
        if i != 4
    ]
    letters = [dead_letter(records[4], stage="decode", error_type="InvalidJson", message="x")]
    return rows, letters


def test_rows_misfits_and_earlier_dead_letters_land_once_across_reruns(tmp_path: Path) -> None:
    rows, letters = _rows_and_letters()
    for _ in range(2):  # the rerun adds nothing
        sink = _sink(tmp_path, batch_size=2)

        def build(p: beam.Pipeline, sink: WriteWithDeadLetters = sink) -> Any:
            return (p | "Rows" >> beam.Create(rows), p | beam.Create(letters)) | sink

        _commits, _dead_commits, misfits = collect(build)
        assert [m.record.position for m in misfits] == ["2"]

    out = DeltaTable(str(tmp_path / "out")).to_pyarrow_table()
    dlq = DeltaTable(str(tmp_path / "dlq")).to_pyarrow_table()
    assert sorted(out["id"].to_pylist()) == ["r0", "r1", "r3", "r5"]
    written = zip(dlq["_position"].to_pylist(), dlq["error_type"].to_pylist(), strict=True)
    assert sorted(written) == [
        ("2", "SchemaMismatch"),
        ("4", "InvalidJson"),
    ]
    assert dlq.filter(pa.compute.equal(dlq["_position"], "2"))["value"].to_pylist() == [b"v2"]
    # Both tables together hold the whole chain: the source would resume after 5.
    assert _sink(tmp_path).resume_from.frontiers("kafka", "t") == {"0": "5"}  # type: ignore[union-attr]
