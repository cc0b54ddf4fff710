"""``dataplane report``: events per time bucket and the value distribution, drawn."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from runners.cli import main as dataplane
from runners.report import events_per_bucket

MS = pa.timestamp("ms", tz="UTC")


def sentiment_table(rows: int) -> pa.Table:
    labels = ["negative", "neutral", "positive"]
    return pa.table(
        {
            "_event_time": pa.array([n * 30_000 for n in range(rows)], MS),
            "sentiment_compound": [(n % 21 - 10) / 10 for n in range(rows)],
            "sentiment_label": [
                labels[(n % 21 - 10 > 0) - (n % 21 - 10 < 0) + 1] for n in range(rows)
            ],
        }
    )


def test_buckets_cover_every_row_at_a_size_fitting_the_span() -> None:
    column, bucket, counts = events_per_bucket(sentiment_table(600))  # 5 hours
    assert column == "_event_time" and bucket == 300
    assert sum(n for _, n in counts) == 600 and len(counts) == 60


def test_report_draws_a_sentiment_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_deltalake(str(tmp_path / "tweets"), sentiment_table(200))
    out = tmp_path / "report.png"
    assert dataplane(["report", str(tmp_path / "tweets"), "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "200 rows; right panel: sentiment" in capsys.readouterr().out


def test_report_names_what_it_cannot_draw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_deltalake(str(tmp_path / "plain"), pa.table({"x": [1, 2]}))
    assert dataplane(["report", str(tmp_path / "plain"), "--out", str(tmp_path / "r.png")]) == 2
    assert "TABLE: has no event-time column" in capsys.readouterr().err
    assert dataplane(["report", str(tmp_path / "plain"), "--out", str(tmp_path / "r.bmp")]) == 2
    assert "--out: expected a .png or .svg file" in capsys.readouterr().err
    assert dataplane(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.png")]) == 2
    assert "cannot read" in capsys.readouterr().err
