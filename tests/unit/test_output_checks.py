"""What an output check lets through: new, empty, Delta tables, an interrupted first commit.

(What it refuses is run as users run it in ``test_config_errors_cli.py``.)
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from schemas.errors import ConfigError
from transforms.checkpoint.storage import check_output_location


def _part_file() -> str:
    return f"part-00001-{uuid.uuid4()}-c000.zstd.parquet"


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda lake: lake / "new" / "table", id="a new path"),
        pytest.param(lambda lake: lake, id="an empty directory"),
        pytest.param(
            lambda lake: (write_deltalake(str(lake / "t"), pa.table({"n": [1]})), lake / "t")[1],
            id="a Delta table",
        ),
        pytest.param(
            lambda lake: ((lake / _part_file()).write_bytes(b"PAR1"), lake)[1],
            id="data files of an interrupted first commit",
        ),
        pytest.param(
            lambda lake: ((lake / f"{_part_file()}#3").write_bytes(b"PA"), lake)[1],
            id="a data file half written",
        ),
        pytest.param(
            lambda lake: ((lake / "dt=2026-11-01").mkdir(), lake)[1], id="a partition directory"
        ),
    ],
)
def test_a_delta_output_may_be(make, tmp_path: Path) -> None:
    path = make(tmp_path)
    check_output_location(str(path), delta=True)
    check_output_location(f"file://{path}", delta=True)


def test_a_parquet_output_may_hold_other_files(tmp_path: Path) -> None:
    (tmp_path / "dt=2026-11-01").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    check_output_location(str(tmp_path), delta=False)
    with pytest.raises(ConfigError, match="is not a Delta table"):
        check_output_location(str(tmp_path), delta=True)


def test_object_stores_are_left_to_their_first_write() -> None:
    check_output_location("s3://bucket/lake/tweets", delta=True)
    check_output_location("gs://bucket/lake/tweets", delta=True)
