"""README claims: ``dataplane schemas list`` and ``dataplane quality`` (exit 2, Parquet input).

"dataplane schemas list  # subjects, versions, ids, formats, levels"; schema ids are "derived
from subject and version (crc32), so they are equal on every machine". ``dataplane quality
TABLE --suite FILE`` "checks a whole Delta table or Parquet directory and exits 0 (passes),
1 (fails, failures listed) or 2 (bad usage)".
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runners.cli.main import main as dataplane
from transforms.quality import PACKAGED_SUITES

READINGS_SUITE = str(PACKAGED_SUITES / "vehicle_readings.json")


def _crc_id(subject: str, version: int) -> int:
    return zlib.crc32(f"{subject}/{version}".encode()) & 0x7FFFFFFF or 1


def _listing(capsys: pytest.CaptureFixture[str], *flags: str) -> list[list[str]]:
    assert dataplane(["schemas", "list", *flags]) == 0
    return [line.split("\t") for line in capsys.readouterr().out.splitlines()]


def test_schemas_list_shows_subjects_versions_crc32_ids_formats_and_levels(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _listing(capsys) == [
        ["tweet", "v1", f"id={_crc_id('tweet', 1)}", "json", "BACKWARD"],
        [
            "vehicle_telemetry",
            "v1",
            f"id={_crc_id('vehicle_telemetry', 1)}",
            "avro",
            "FULL_TRANSITIVE",
        ],
        [
            "vehicle_telemetry",
            "v2",
            f"id={_crc_id('vehicle_telemetry', 2)}",
            "avro",
            "FULL_TRANSITIVE",
        ],
    ]


def test_schemas_list_reads_a_schema_directory_and_a_rest_registry_alike(
    tmp_path: Path, registry_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "1.json").write_text(json.dumps({"type": "object"}))
    (tmp_path / "orders" / "2.json").write_text(json.dumps({"type": "object", "title": "o"}))
    (tmp_path / "orders" / "config.json").write_text(json.dumps({"compatibility": "NONE"}))
    (tmp_path / "clicks").mkdir()
    (tmp_path / "clicks" / "1.avsc").write_text(
        json.dumps({"type": "record", "name": "c", "fields": [{"name": "x", "type": "int"}]})
    )
    assert _listing(capsys, "--registry", str(tmp_path)) == [
        ["clicks", "v1", f"id={_crc_id('clicks', 1)}", "avro", "BACKWARD"],
        ["orders", "v1", f"id={_crc_id('orders', 1)}", "json", "NONE"],
        ["orders", "v2", f"id={_crc_id('orders', 2)}", "json", "NONE"],
    ]
    # The packaged schemas served over the Confluent REST API list as they do from files.
    assert _listing(capsys, "--registry", registry_url) == _listing(capsys)


def _readings(n: int, **change: object) -> list[dict[str, object]]:
    base = {"ts": 1_793_491_200_000, "speed_kph": 80.0, "engine_temp_c": 90.0}
    rows = [
        {
            **base,
            "vehicle_id": f"veh-{i}",
            "lat": 52.5,
            "lon": 13.4,
            "geohash": "u33dc0",
            "_record_id": f"r{n}-{i}",
        }
        for i in range(3)
    ]
    rows[0].update(change)
    return rows


def _parquet_dir(root: Path, partitions: dict[str, list[dict[str, object]]]) -> str:
    """A Hive-partitioned Parquet directory like ``--readings_output`` writes."""
    for partition, rows in partitions.items():
        (root / partition).mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), root / partition / "part.parquet")
    return str(root)


def test_quality_checks_a_parquet_directory_every_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _parquet_dir(
        tmp_path / "good",
        {"dt=2026-11-01/hour=00": _readings(0), "dt=2026-11-01/hour=01": _readings(1)},
    )
    assert dataplane(["quality", good, "--suite", READINGS_SUITE]) == 0
    assert "6 rows" in capsys.readouterr().out
    # One bad reading in the second partition only: the whole directory is checked.
    bad = _parquet_dir(
        tmp_path / "bad",
        {"dt=2026-11-01/hour=00": _readings(0), "dt=2026-11-02/hour=05": _readings(1, lat=91.0)},
    )
    assert dataplane(["quality", bad, "--suite", READINGS_SUITE]) == 1
    printed = capsys.readouterr().out
    assert "FAILED" in printed and "lat" in printed


@pytest.mark.parametrize(
    "case", ["no such table", "no such suite", "suite not JSON", "--version of Parquet"]
)
def test_quality_exits_2_on_bad_usage(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = _parquet_dir(tmp_path / "readings", {"dt=2026-11-01/hour=00": _readings(0)})
    (tmp_path / "broken.json").write_text("{not json")
    command = {
        "no such table": ["quality", str(tmp_path / "missing"), "--suite", READINGS_SUITE],
        "no such suite": ["quality", table, "--suite", str(tmp_path / "none.json")],
        "suite not JSON": ["quality", table, "--suite", str(tmp_path / "broken.json")],
        "--version of Parquet": ["quality", table, "--suite", READINGS_SUITE, "--version", "0"],
    }[case]
    assert dataplane(command) == 2
    assert capsys.readouterr().err.startswith("error: ")
