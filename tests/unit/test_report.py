"""``dataplane report``: events per time bucket and the value distribution, drawn."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake

from runners.cli.main import main as dataplane
from runners.cli.report import events_per_bucket

MS = pa.timestamp("ms", tz="UTC")
SVG = "{http://www.w3.org/2000/svg}"
COLOURS = {"negative": "#d9534f", "neutral": "#9e9e9e", "positive": "#5cb85c"}
Bar = tuple[float, float, float, float]  # left, right, bottom, top: in data units


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


# Rows per minute for five minutes (none in the third), each row a second apart; scores
# on both sides of the label thresholds (compound >= 0.05 positive, <= -0.05 negative).
PER_MINUTE = [4, 1, 0, 7, 2]
SCORES = [-0.8, -0.3, -0.05, 0.0, 0.02, 0.05, 0.4, 0.9]


def uneven_sentiment_table() -> pa.Table:
    times = [m * 60_000 + k * 1000 for m, n in enumerate(PER_MINUTE) for k in range(n)]
    scores = [SCORES[n % len(SCORES)] for n in range(len(times))]
    labels = ["positive" if s >= 0.05 else "negative" if s <= -0.05 else "neutral" for s in scores]
    return pa.table(
        {
            "_event_time": pa.array(times, MS),
            "sentiment_compound": scores,
            "sentiment_label": labels,
        }
    )


def test_report_draws_the_rows_per_bucket_and_the_score_histogram(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    table = uneven_sentiment_table()
    write_deltalake(str(tmp_path / "tweets"), table)
    out = tmp_path / "report.svg"
    assert dataplane(["report", str(tmp_path / "tweets"), "--out", str(out)]) == 0
    assert "14 rows; right panel: sentiment" in capsys.readouterr().out
    root = _svg(out)
    left, right = [g for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("axes_")]
    texts = _texts(root)

    # Left: a 10 s bucket fits the 4-minute span; one bar per non-empty bucket, as tall
    # as its rows, placed in time (the empty third minute is a gap).
    assert "rows per 10 s of _event_time (UTC)" in texts
    bars = sorted(_bars(left, "#1a56db"))  # x in seconds of the (UTC) day: see _scale
    assert [round(top - bottom, 6) for _, _, bottom, top in bars] == [4, 1, 7, 2]
    assert [round((x0 + x1) / 2, 3) for x0, x1, _, _ in bars] == [0, 60, 180, 240]
    assert all(round(x1 - x0, 3) == 9 for x0, x1, _, _ in bars)  # 90 % of the bucket

    # Right: per label, 40 bins over [-1, 1] holding that label's scores.
    assert "sentiment: VADER compound score" in texts
    scores = np.array(table["sentiment_compound"].to_pylist())
    labels = np.array(table["sentiment_label"].to_pylist())
    for label, colour in COLOURS.items():
        mine = scores[labels == label]
        assert f"{label} ({len(mine)})" in texts  # the legend
        drawn = sorted(_bars(right, colour))
        assert np.allclose([b[0] for b in drawn], np.linspace(-1, 0.95, 40), atol=1e-6)
        expected, _ = np.histogram(mine, bins=40, range=(-1, 1))
        assert [round(top - bottom, 6) for _, _, bottom, top in drawn] == list(expected)
    assert sum(len(scores[labels == label]) for label in COLOURS) == 14
    assert any(t.endswith("tweets · 14 rows") for t in texts)


def test_report_png_is_the_figure(tmp_path: Path) -> None:
    from matplotlib.image import imread

    write_deltalake(str(tmp_path / "tweets"), sentiment_table(200))
    out = tmp_path / "report.png"
    assert dataplane(["report", str(tmp_path / "tweets"), "--out", str(out)]) == 0
    pixels = imread(out)
    assert pixels.shape[:2] == (450, 1300)  # 13 x 4.5 in at 100 dpi
    rgb = (pixels[:, :, :3] * 255).round()
    for colour in ("#1a56db", *COLOURS.values()):  # the buckets' bars, each label's bars
        wanted = tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
        assert (rgb == wanted).all(axis=2).sum() > 50, colour


def _svg(path: Path) -> ET.Element:
    """The SVG's tree with comments: matplotlib writes each text as ``<!-- text -->``."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    return ET.parse(path, parser).getroot()


def _texts(root: ET.Element) -> list[str]:
    return [c.text.strip() for c in root.iter() if c.tag is ET.Comment and c.text]


def _bars(axes: ET.Element, colour: str) -> list[Bar]:
    """The rectangles of one fill colour drawn in ``axes``, in the axes' data units."""
    to_x, to_y = _scale(axes, "x"), _scale(axes, "y")
    bars = []
    for patch in axes.findall(f"{SVG}g/{SVG}path"):
        if f"fill: {colour}" not in (patch.get("style") or ""):
            continue
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", patch.get("d", ""))]
        xs, ys = numbers[::2], numbers[1::2]
        bottom, top = sorted((to_y(max(ys)), to_y(min(ys))))
        bars.append((to_x(min(xs)), to_x(max(xs)), bottom, top))
    return bars


def _scale(axes: ET.Element, axis: str) -> Callable[[float], float]:
    """Pixel to data along ``axis`` ("x" or "y"), from the axis's first and last tick.

    Ticks are numbers, or times of day (``HH:MM:SS``, read as seconds).
    """
    ticks = []
    for tick in axes.iter(f"{SVG}g"):
        if tick.get("id", "").startswith(f"{axis}tick_"):
            pixel = float(next(tick.iter(f"{SVG}use")).get(axis, ""))
            ticks.append((pixel, _tick_value(_texts(tick)[0])))
    (p0, v0), (p1, v1) = ticks[0], ticks[-1]
    return lambda pixel: v0 + (pixel - p0) * (v1 - v0) / (p1 - p0)


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


def _tick_value(label: str) -> float:
    """A tick label's value: a number (matplotlib writes minus as U+2212) or HH:MM:SS."""
    if re.fullmatch(r"\d\d:\d\d:\d\d", label):
        hours, minutes, seconds = (int(part) for part in label.split(":"))
        return hours * 3600 + minutes * 60 + seconds
    return float(label.replace("\u2212", "-"))
