"""`dataplane quality` names the columns a suite checks that the table lacks."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runners.cli.main import main as dataplane
from transforms.quality import PACKAGED_SUITES

SUITE = str(PACKAGED_SUITES / "vehicle_readings.json")
READING = {
    "vehicle_id": ["v1"],
    "ts": [1],
    "speed_kph": [50.0],
    "engine_temp_c": [90.0],
    "lat": [52.5],
    "lon": [13.4],
    "geohash": ["u33"],
    "_record_id": ["r1"],
}


def _quality(tmp_path: Path, columns: dict, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    (tmp_path / "t").mkdir()
    pq.write_table(pa.table(columns), tmp_path / "t" / "part-0.parquet")
    status = dataplane(["quality", str(tmp_path / "t"), "--suite", SUITE, "--format", "parquet"])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("dropped", [["speed_kph"], ["lat", "geohash"]])
def test_the_missing_columns_are_named(tmp_path, capsys, dropped) -> None:
    columns = {k: v for k, v in READING.items() if k not in dropped}
    status, out = _quality(tmp_path, columns, capsys)
    assert status == 1
    line = next(x for x in out.splitlines() if x.startswith("missing column"))
    named = line.split(":")[0].split(" ", 2)[2]
    assert named == ", ".join(repr(c) for c in dropped)
    assert line.endswith(", ".join(columns))


def test_a_table_with_every_column_says_nothing_of_missing_ones(tmp_path, capsys) -> None:
    status, out = _quality(tmp_path, READING, capsys)
    assert status == 0 and "missing column" not in out
