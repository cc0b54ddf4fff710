"""Late panes through the Delta merge in streaming; merge, Parquet and option edge cases."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.transforms.window import TimestampedValue
from deltalake import DeltaTable
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_pipelines.feeds.telemetry import generate_telemetry
from beam_pipelines.launch.options import storage_options_from
from beam_pipelines.telemetry import AGGREGATE_SCHEMA, LATE_SCHEMA, _late_row, aggregate_row
from schemas.errors import ConfigError
from tests.helpers import collect
from transforms.featurize import SpeedStats, WindowedAggregate
from transforms.sinks import MergeCommitter, MergeIntoDelta, WriteToDelta, WriteToPartitionedParquet
from transforms.sinks.parquet import partition_of


def reading(t_s: float, speed: float) -> TimestampedValue:
    row = {
        "vehicle_id": "v1",
        "ts": None,
        "speed_kph": speed,
        "engine_temp_c": 85.0,
        "lat": 52.5,
        "lon": 13.4,
        "fuel_level_pct": None,
        "geohash": "u33dc0",
        "_record_id": f"r{t_s}",
        "_source": "kafka",
        "_stream": "telemetry",
        "_partition": "0",
        "_position": str(int(t_s)),
        "_event_time_ms": int(t_s * 1000),
    }
    return TimestampedValue(row, t_s)


def test_a_late_pane_updates_its_row_and_a_too_late_reading_lands_in_the_late_table(
    tmp_path: Path,
) -> None:
    stream = (
        EventStream()
        .add_elements([reading(10, 40), reading(20, 60)])
        .advance_watermark_to(310)
        .add_elements([reading(30, 80)])  # late, within 120 s
        .advance_watermark_to(500)
        .add_elements([reading(40, 100)])  # too late
        .advance_watermark_to_infinity()
    )
    options = PipelineOptions()
    options.view_as(StandardOptions).streaming = True
    aggregates, late = str(tmp_path / "aggregates"), str(tmp_path / "late")
    with beam.Pipeline(runner="BundleBasedDirectRunner", options=options) as p:
        panes, too_late = (
            p
            | stream
            | WindowedAggregate("vehicle_id", SpeedStats(), size_s=300, allowed_lateness_s=120)
        )
        _ = (
            panes
            | beam.Map(aggregate_row)
            | MergeIntoDelta(
                aggregates,
                schema=AGGREGATE_SCHEMA,
                keys=["vehicle_id", "window_start"],
                version_column="pane_index",
                max_batch_latency_s=0.5,
            )
        )
        _ = (
            too_late
            | beam.Map(_late_row)
            | WriteToDelta(late, schema=LATE_SCHEMA, app_id="late", max_batch_latency_s=0.5)
        )

    [row] = DeltaTable(aggregates).to_pyarrow_table().to_pylist()
    assert (row["pane_timing"], row["pane_index"], row["window_records"]) == ("LATE", 1, 3)
    assert row["avg_speed_kph"] == 60.0 and row["max_speed_kph"] == 80.0
    [late_row] = DeltaTable(late).to_pyarrow_table().to_pylist()
    assert late_row["_record_id"] == "r40" and late_row["speed_kph"] == 100.0
    assert late_row["watermark_at_arrival"].timestamp() >= 419.999


def test_an_older_pane_merged_after_a_newer_one_changes_nothing(tmp_path: Path) -> None:
    schema = pa.schema([("k", pa.string()), ("pane", pa.int64()), ("n", pa.int64())])
    committer = MergeCommitter(str(tmp_path), keys=["k"], version_column="pane")
    first = committer.merge(pa.Table.from_pylist([{"k": "a", "pane": 2, "n": 9}], schema=schema))
    older = committer.merge(pa.Table.from_pylist([{"k": "a", "pane": 1, "n": 5}], schema=schema))
    again = committer.merge(pa.Table.from_pylist([{"k": "a", "pane": 2, "n": 9}], schema=schema))

    assert (first.inserted, older.version, older.unchanged, again.version) == (1, None, 1, None)
    assert DeltaTable(str(tmp_path)).version() == 0
    assert DeltaTable(str(tmp_path)).to_pyarrow_table().to_pylist() == [
        {"k": "a", "pane": 2, "n": 9}
    ]


def test_merge_settings_name_the_parameter() -> None:
    schema = pa.schema([("k", pa.string()), ("pane", pa.int64())])
    with pytest.raises(ConfigError, match="keys: 'x' is not a column of the schema"):
        MergeIntoDelta("/t", schema=schema, keys=["x"], version_column="pane")
    with pytest.raises(ConfigError, match="version_column: 'v' is not a column"):
        MergeIntoDelta("/t", schema=schema, keys=["k"], version_column="v")
    with pytest.raises(ConfigError, match="keys: expected the columns"):
        MergeIntoDelta("/t", schema=schema, keys=[], version_column="pane")


def test_a_retried_parquet_batch_overwrites_its_file(tmp_path: Path) -> None:
    rows = [reading(t, 50.0).value for t in (1, 2, 3)]
    schema = pa.schema([("speed_kph", pa.float64())])
    for _ in range(2):
        collect(
            lambda p: (
                p
                | beam.Create(rows + rows[:1])
                | WriteToPartitionedParquet(str(tmp_path), schema=schema)
            )
        )

    files = sorted(path.name for path in tmp_path.rglob("*.parquet"))
    assert len(files) == 1 and files[0].startswith("part-000-")
    table = ds.dataset(str(tmp_path), partitioning="hive").to_table()
    assert sorted(table["_record_id"].to_pylist()) == ["r1", "r2", "r3"]
    assert not list(tmp_path.rglob("*.inprogress"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"shards": 0}, "shards: must be positive"),
        ({"batch_size": 0}, "batch_size: must be positive"),
    ],
)
def test_parquet_settings_name_the_parameter(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        WriteToPartitionedParquet("/tmp/x", schema=pa.schema([]), **args)


def test_storage_options_take_beams_s3_flags_then_the_file_then_flags(tmp_path: Path) -> None:
    properties = tmp_path / "storage.properties"
    properties.write_text("aws_region=eu-west-1\nAWS_ACCESS_KEY_ID=from-file\n")
    options = PipelineOptions(
        [
            "--s3_endpoint_url=http://127.0.0.1:5000",
            "--s3_access_key_id=from-beam",
            f"--storage_config_file={properties}",
            "--storage_option=AWS_REGION=us-east-2",
        ]
    )
    assert storage_options_from(options) == {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
        "AWS_ACCESS_KEY_ID": "from-file",
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-2",
    }
    with pytest.raises(ConfigError, match="--storage_option: expected KEY=VALUE"):
        storage_options_from(PipelineOptions(["--storage_option=nokey"]))


def test_generated_telemetry_arrives_out_of_order_with_a_late_share() -> None:
    from schemas.registry import LocalFileRegistry
    from transforms.validate import RecordDecoder

    registry = LocalFileRegistry()
    decoder = RecordDecoder(registry, registry.latest("vehicle_telemetry"))
    messages = list(generate_telemetry(2000, vehicles=5, max_delay_ms=30_000, late_ratio=0.05))
    arrivals = [m.timestamp_ms for m in messages]
    taken = [int(decoder.decode(m.value)["ts"].timestamp() * 1000) for m in messages]
    delays = [a - t for a, t in zip(arrivals, taken, strict=True)]

    assert arrivals == sorted(arrivals)  # emitted in arrival order
    assert taken != sorted(taken)  # which is not event-time order
    late = [d for m, d in zip(messages, delays, strict=True) if m.kind == "late"]
    assert 60 <= len(late) <= 140 and set(late) == {900_000}
    on_time = [d for m, d in zip(messages, delays, strict=True) if m.kind == "reading"]
    assert min(on_time) >= 0 and max(on_time) <= 30_000


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_FIRST_MS = (datetime(1, 1, 1, tzinfo=timezone.utc) - _EPOCH) // timedelta(milliseconds=1)
_LAST_MS = (datetime(9999, 12, 31, 23, 59, tzinfo=timezone.utc) - _EPOCH) // timedelta(
    milliseconds=1
)
event_times = st.integers(_FIRST_MS, _LAST_MS)


@settings(max_examples=300, deadline=None)
@given(event_times, event_times)
def test_partition_paths_name_the_hour_and_sort_as_their_times(a: int, b: int) -> None:
    path = partition_of(a)
    assert re.fullmatch(r"dt=\d{4}-\d{2}-\d{2}/hour=\d{2}", path)
    hour = datetime.strptime(path, "dt=%Y-%m-%d/hour=%H").replace(tzinfo=timezone.utc)
    assert timedelta(0) <= _EPOCH + timedelta(milliseconds=a) - hour < timedelta(hours=1)
    if a <= b:
        assert path <= partition_of(b)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.binary(max_size=40), min_size=1, max_size=30),
    st.integers(1, 5),
    st.integers(1, 100),
)
def test_batches_hold_every_row_once_within_their_bounds(
    blobs: list[bytes], size: int, max_bytes: int
) -> None:
    from transforms.sinks.batching import BatchPerTable, BatchPolicy, row_bytes

    rows = [{"n": n, "blob": blob} for n, blob in enumerate(blobs)]
    (batches,) = collect(
        lambda p: p | beam.Create(rows) | BatchPerTable("/t", BatchPolicy(size, 5.0, max_bytes))
    )
    assert sorted(r["n"] for _, batch in batches for r in batch) == list(range(len(rows)))
    for _, batch in batches:
        assert len(batch) <= size
        # Only the last row may take a batch over max_bytes.
        assert sum(row_bytes(r) for r in batch[:-1]) < max_bytes
