"""The telemetry pipeline end to end: an oracle in pandas, reruns, S3 and GCS, the GX gate."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pygeohash
import pytest
from deltalake import DeltaTable, write_deltalake

from beam_pipelines import telemetry
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.telemetry import AVRO_BAD_KINDS, generate_telemetry
from runners.cli.main import main as dataplane
from schemas.registry import LocalFileRegistry
from transforms.quality import PACKAGED_SUITES
from transforms.validate import RecordDecoder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GENERATOR_ARGS: dict[str, Any] = {
    "vehicles": 8,
    "bad_ratio": 0.02,
    "physics_bad_ratio": 0.02,
    "max_delay_ms": 20_000,
    "late_ratio": 0.01,
    "interval_ms": 10_000,  # 500 readings per vehicle span 83 minutes: two hour partitions
}
COUNT = 4000
VALID_KINDS = ("reading", "late")


def outputs(base: str) -> dict[str, str]:
    return {
        "output": f"{base}/vehicle_windows",
        "readings_output": f"{base}/readings",
        "late_output": f"{base}/late",
        "dlq": f"{base}/dead_letters",
        "quality_output": f"{base}/quality",
    }


def run_pipeline(source: str, where: dict[str, str], *extra: str) -> Any:
    flags = [f"--{name}={uri}" for name, uri in where.items()]
    return telemetry.run([f"--source={source}", "--bounded", "--runner=direct", *flags, *extra])


def oracle(messages: list, size_ms: int, period_ms: int, precision: int = 6) -> pd.DataFrame:
    """Window aggregates computed in pandas from the generated messages' valid readings."""
    registry = LocalFileRegistry()
    decoder = RecordDecoder(registry, registry.latest("vehicle_telemetry"))
    readings = [decoder.decode(m.value) for m in messages if m.kind in VALID_KINDS]
    frame = pd.DataFrame(readings)
    frame["ts_ms"] = frame["ts"].map(lambda t: int(t.timestamp() * 1000))
    frame["zone"] = [
        pygeohash.encode(lat, lon, precision=precision)
        for lat, lon in zip(frame["lat"], frame["lon"], strict=True)
    ]
    frame["window_start_ms"] = frame["ts_ms"].map(
        lambda t: list(range(t - t % period_ms, t - size_ms, -period_ms))
    )
    frame = frame.explode("window_start_ms", ignore_index=True).astype({"window_start_ms": "int64"})
    last = frame.loc[frame.groupby(["vehicle_id", "window_start_ms"])["ts_ms"].idxmax()]
    grouped = frame.groupby(["vehicle_id", "window_start_ms"]).agg(
        count=("speed_kph", "size"),
        avg_speed_kph=("speed_kph", "mean"),
        min_speed_kph=("speed_kph", "min"),
        max_speed_kph=("speed_kph", "max"),
        avg_engine_temp_c=("engine_temp_c", "mean"),
    )
    zones = last.set_index(["vehicle_id", "window_start_ms"])["zone"].rename("last_zone")
    return grouped.join(zones).reset_index().sort_values(["vehicle_id", "window_start_ms"])


def table_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    frame["window_start_ms"] = frame["window_start"].map(lambda t: int(t.timestamp() * 1000))
    return frame.sort_values(["vehicle_id", "window_start_ms"]).reset_index(drop=True)


def assert_matches_oracle(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    expected = expected.reset_index(drop=True)
    assert list(actual["vehicle_id"]) == list(expected["vehicle_id"])
    assert list(actual["window_start_ms"]) == list(expected["window_start_ms"])
    assert list(actual["count"]) == list(expected["count"])
    assert list(actual["last_zone"]) == list(expected["last_zone"])
    for column in ("avg_speed_kph", "min_speed_kph", "max_speed_kph", "avg_engine_temp_c"):
        assert actual[column].to_numpy() == pytest.approx(expected[column].to_numpy(), rel=1e-12)


def snapshot(where: dict[str, str], storage: dict[str, str] | None = None) -> dict[str, Any]:
    """Delta versions and the Parquet file set: what a rerun must leave as it was."""
    state: dict[str, Any] = {}
    for name in ("output", "late_output", "dlq", "quality_output"):
        if not DeltaTable.is_deltatable(where[name], storage_options=storage):
            state[name] = None  # nothing came late in a batch run: no table yet
            continue
        table = DeltaTable(where[name], storage_options=storage)
        state[name] = (table.version(), table.to_pyarrow_dataset().count_rows())
    state["readings"] = parquet_files(where["readings_output"], storage)
    return state


def parquet_files(uri: str, storage: dict[str, str] | None = None) -> dict[str, int]:
    from transforms.checkpoint.storage import arrow_filesystem

    filesystem, path = arrow_filesystem(uri, storage)
    infos = filesystem.get_file_info(pafs.FileSelector(path, recursive=True))
    return {i.path[len(path) :]: i.size for i in infos if i.type == pafs.FileType.File}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, str]:
    """The generated messages and a Parquet replay file holding them."""
    messages = list(generate_telemetry(COUNT, **GENERATOR_ARGS))
    path = tmp_path_factory.mktemp("telemetry-input") / "telemetry.parquet"
    publish(f"file://{path}", messages)
    return messages, f"file://{path}"


@pytest.fixture(scope="module")
def local_run(generated: tuple[list, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    _, source = generated
    where = outputs(str(tmp_path_factory.mktemp("lake")))
    summary = run_pipeline(source, where)
    return where, summary


def test_aggregates_equal_an_independent_pandas_computation(
    generated: tuple[list, str], local_run: Any
) -> None:
    messages, _ = generated
    where, _ = local_run
    actual = table_frame(DeltaTable(where["output"]).to_pyarrow_table())

    assert_matches_oracle(actual, oracle(messages, 300_000, 300_000))
    assert set(actual["pane_timing"]) == {"ON_TIME"} and set(actual["pane_index"]) == {0}
    assert (actual["window_records"] == actual["count"]).all()
    ends = actual["window_end"].map(lambda t: int(t.timestamp() * 1000))
    assert (ends - actual["window_start_ms"] == 300_000).all()


def test_every_record_is_a_reading_or_a_dead_letter_with_its_reason(
    generated: tuple[list, str], local_run: Any
) -> None:
    messages, _ = generated
    where, summary = local_run
    kinds = Counter(m.kind for m in messages)
    valid = sum(kinds[k] for k in VALID_KINDS)
    readings = ds.dataset(where["readings_output"], partitioning="hive").to_table()
    dead = DeltaTable(where["dlq"]).to_pyarrow_table()

    assert summary.records_in == COUNT == readings.num_rows + dead.num_rows
    assert readings.num_rows == valid and summary.valid == valid
    reasons = Counter(dead.column("error_type").to_pylist())
    expected: Counter[str] = Counter()
    for kind, n in kinds.items():
        if kind in AVRO_BAD_KINDS:
            expected[AVRO_BAD_KINDS[kind]] += n
    physics = sum(n for k, n in kinds.items() if k not in VALID_KINDS and k not in AVRO_BAD_KINDS)
    assert physics > 0 and reasons == expected + Counter({"OutOfRange": physics})
    hours = set(zip(readings["dt"].to_pylist(), readings["hour"].to_pylist(), strict=True))
    assert hours == {("2026-11-01", 8), ("2026-11-01", 9)}


def test_each_committed_aggregate_batch_has_a_passing_quality_row(local_run: Any) -> None:
    where, summary = local_run
    quality = DeltaTable(where["quality_output"]).to_pyarrow_table().to_pylist()

    assert quality and all(row["success"] and row["failed"] == 0 for row in quality)
    assert (
        sum(row["rows"] for row in quality)
        == DeltaTable(where["output"]).to_pyarrow_dataset().count_rows()
    )
    assert summary.counters["dataplane.quality/batches_passed"] == len(quality)


def test_rerunning_the_same_input_leaves_every_output_unchanged(
    generated: tuple[list, str], tmp_path: Path
) -> None:
    _, source = generated
    where = outputs(str(tmp_path))
    run_pipeline(source, where)
    before = snapshot(where)
    run_pipeline(source, where)

    assert snapshot(where) == before


def test_sliding_windows_equal_the_pandas_computation(
    generated: tuple[list, str], tmp_path: Path
) -> None:
    messages, source = generated
    where = outputs(str(tmp_path))
    run_pipeline(source, where, "--window_period_s=60", "--geohash_precision=5")

    actual = table_frame(DeltaTable(where["output"]).to_pyarrow_table())
    assert_matches_oracle(actual, oracle(messages, 300_000, 60_000, precision=5))


def test_outputs_on_s3_read_back_and_survive_a_rerun(
    generated: tuple[list, str], moto_endpoint: str
) -> None:
    import boto3

    messages, source = generated
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket="lake-s3")
    storage = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    where = outputs("s3://lake-s3/telemetry")
    flags = [f"--storage_option={k}={v}" for k, v in storage.items()]
    run_pipeline(source, where, *flags)
    before = snapshot(where, storage)
    run_pipeline(source, where, *flags)

    assert snapshot(where, storage) == before
    actual = table_frame(DeltaTable(where["output"], storage_options=storage).to_pyarrow_table())
    assert_matches_oracle(actual, oracle(messages, 300_000, 300_000))
    filesystem = pafs.S3FileSystem(
        endpoint_override=moto_endpoint, access_key="testing", secret_key="testing"
    )
    readings = ds.dataset("lake-s3/telemetry/readings", filesystem=filesystem, partitioning="hive")
    assert readings.count_rows() == sum(1 for m in messages if m.kind in VALID_KINDS)


def test_readings_on_gcs_read_back_and_survive_a_rerun(
    generated: tuple[list, str], gcs_emulator: str, tmp_path: Path
) -> None:
    messages, source = generated
    where = {**outputs(str(tmp_path)), "readings_output": "gs://lake/telemetry/readings"}
    run_pipeline(source, where)
    files = parquet_files(where["readings_output"])
    run_pipeline(source, where)

    assert parquet_files(where["readings_output"]) == files and files
    filesystem = pafs.GcsFileSystem(
        anonymous=True, endpoint_override=gcs_emulator.split("//")[1], scheme="http"
    )
    readings = ds.dataset("lake/telemetry/readings", filesystem=filesystem, partitioning="hive")
    assert readings.count_rows() == sum(1 for m in messages if m.kind in VALID_KINDS)
    assert set(readings.to_table().column("vehicle_id").to_pylist()) == {
        f"veh-{n:04d}" for n in range(GENERATOR_ARGS["vehicles"])
    }


def test_quality_gate_passes_a_good_table_and_fails_a_corrupted_one(
    local_run: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where, _ = local_run
    suite = str(PACKAGED_SUITES / "vehicle_windows.json")
    corrupted = tmp_path / "corrupted"
    shutil.copytree(where["output"], corrupted)
    good = DeltaTable(where["output"]).to_pyarrow_table()
    bad = good.slice(0, 1).to_pylist()[0]
    bad.update(vehicle_id=None, max_speed_kph=900.0, window_end=bad["window_start"])
    write_deltalake(str(corrupted), pa.Table.from_pylist([bad], schema=good.schema), mode="append")

    assert dataplane(["quality", where["output"], "--suite", suite]) == 0
    assert dataplane(["quality", str(corrupted), "--suite", suite]) == 1
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "max_speed_kph" in printed and "vehicle_id" in printed
