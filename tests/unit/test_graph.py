"""``dataplane graph``: the steps and edges of a pipeline, drawn to PNG or SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from runners.cli.graph import PipelineGraph, build_for_drawing, pipeline_graph
from runners.cli.main import main as dataplane

# The sentiment pipeline as beam_pipelines/sentiment.py builds it (at least): each step's
# bad output joins AllDeadLetters; the scored rows are counted, then written.
SENTIMENT_STEPS = {
    "Read",
    "Decode",
    "Clean",
    "Score",
    "AllDeadLetters",
    "CountDeadLetters",
    "CountLabels",
    "CountValid",
    "WriteScored",
    "WriteDeadLetters",
}
SENTIMENT_EDGES = {
    ("Read", "Decode"),
    ("Decode", "Clean"),
    ("Clean", "Score"),
    ("Decode", "AllDeadLetters"),
    ("Clean", "AllDeadLetters"),
    ("Score", "AllDeadLetters"),
    ("AllDeadLetters", "CountDeadLetters"),
    ("CountDeadLetters", "WriteDeadLetters"),
    ("Score", "CountLabels"),
    ("CountLabels", "CountValid"),
    ("CountValid", "WriteScored"),
    ("WriteScored", "AllDeadLetters"),  # rows that do not fit the table become dead letters
}
Box = tuple[str, float, float]  # step name, centre x, centre y (SVG pixels)
SVG = "{http://www.w3.org/2000/svg}"


def test_the_telemetry_graph_has_its_steps_and_data_flow() -> None:
    graph = pipeline_graph(build_for_drawing("telemetry", []))

    assert graph.steps[:5] == ["Read", "Decode", "EventTime", "Physics", "Zone"]
    assert {
        ("Read", "Decode"),
        ("Decode", "EventTime"),
        ("Decode", "AllDeadLetters"),
        ("CountValid", "Windows"),
        ("CountValid", "WriteReadings"),
        ("Windows", "ToAggregateRows"),
        ("Windows", "ToLateRows"),
        ("ToAggregateRows", "MergeAggregates"),
        ("CountDeadLetters", "WriteDeadLetters"),
    } <= graph.edges
    depths = graph.depths()
    assert depths["Read"] == 0 and depths["MergeAggregates"] > depths["Windows"]


def test_quality_output_adds_its_steps() -> None:
    graph = pipeline_graph(build_for_drawing("telemetry", ["--quality_output=/lake/q"]))
    assert ("MergeAggregates", "CheckQuality") in graph.edges
    assert ("CheckQuality", "WriteQuality") in graph.edges


def test_the_svg_draws_each_step_once_and_an_arrow_for_each_edge(tmp_path: Path) -> None:
    out = tmp_path / "g.svg"
    assert dataplane(["graph", "sentiment", "--out", str(out)]) == 0
    boxes, arrows, texts = _drawn(out)

    graph = pipeline_graph(build_for_drawing("sentiment", []))
    assert sorted(name for name, _, _ in boxes) == sorted(graph.steps)
    assert len(arrows) == len(graph.edges)
    drawn = {_joined(boxes, start, tip) for start, tip in arrows}
    assert drawn == graph.edges
    assert set(graph.steps) >= SENTIMENT_STEPS and drawn >= SENTIMENT_EDGES
    assert f"sentiment: {len(graph.steps)} steps" in texts
    # Left to right by depth: every arrow points from an earlier column to a later one.
    assert all(start[0] < tip[0] for start, tip in arrows)


def test_the_png_is_the_same_figure(tmp_path: Path) -> None:
    from matplotlib.image import imread

    out = tmp_path / "g.png"
    assert dataplane(["graph", "sentiment", "--out", str(out)]) == 0
    pixels = imread(out)
    graph = pipeline_graph(build_for_drawing("sentiment", []))
    columns, tallest = _layout(graph)
    # matplotlib's 100 dpi: the figure is 3 in per column (+1) by 1.1 in per row (+1.5),
    # and up to 1 in above and below for the arcs over skipped steps.
    height, width = pixels.shape[:2]
    assert width == (3 * columns + 1) * 100
    assert round((1.1 * tallest + 1.5) * 100) <= height <= round((1.1 * tallest + 3.5) * 100)
    box_fill = (pixels[:, :, :3] * 255).round() == (0xE8, 0xF0, 0xFE)
    assert box_fill.all(axis=2).sum() > 100 * len(graph.steps)  # the boxes are filled in


def _layout(graph: PipelineGraph) -> tuple[int, int]:
    """(columns, most steps in one column) of the drawing."""
    depths = list(graph.depths().values())
    return max(depths) + 1, max(depths.count(d) for d in set(depths))


def _drawn(svg: Path) -> tuple[list[Box], list[tuple[tuple[float, float], ...]], list[str]]:
    """The step boxes, the arrows (start, tip) and every text drawn in a graph's SVG.

    matplotlib writes each text as ``<g id="text_N"><!-- the text --> glyphs</g>``; a
    step's text holds its box (a path) too. An arrow is a ``patch_N`` of two paths, the
    shaft (``M start Q control end``) and the head (``M a L tip L b``).
    """
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    root = ET.parse(svg, parser).getroot()
    boxes: list[Box] = []
    arrows = []
    texts = []
    for group in root.iter(f"{SVG}g"):
        group_id = group.get("id", "")
        if group_id.startswith("text_"):
            (text,) = [c.text.strip() for c in group if c.tag is ET.Comment and c.text]
            texts.append(text)
            for box in group.findall(f"{SVG}g[@id]/{SVG}path"):  # glyphs are <use>, not paths
                xs, ys = zip(*_points(box.get("d", "")), strict=True)
                boxes.append((text, (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2))
        elif group_id.startswith("patch_") and "#555555" in (group[0].get("style") or ""):
            shaft, head = (_points(path.get("d", "")) for path in group.findall(f"{SVG}path"))
            arrows.append((shaft[0], head[1]))
    return boxes, arrows, texts


def _points(d: str) -> list[tuple[float, float]]:
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d)]
    return list(zip(numbers[::2], numbers[1::2], strict=True))


def _joined(boxes: list[Box], start: tuple[float, float], tip: tuple[float, float]) -> tuple:
    """The steps an arrow joins: the nearest box left of its start, right of its tip."""

    def nearest(candidates: list[Box], x: float, y: float) -> str:
        column = min(candidates, key=lambda b: abs(b[1] - x))[1]
        in_column = [b for b in candidates if abs(b[1] - column) < 1]
        return min(in_column, key=lambda b: abs(b[2] - y))[0]

    before = nearest([b for b in boxes if b[1] < start[0]], *start)
    after = nearest([b for b in boxes if b[1] > tip[0]], *tip)
    return before, after


def test_the_cli_names_a_bad_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert dataplane(["graph", "sentiment", "--out", str(tmp_path / "g.gif")]) == 2
    assert "--out: expected a .png or .svg file, got 'g.gif'" in capsys.readouterr().err
    assert dataplane(["graph", "sentiment"]) == 2
    assert "--out: required" in capsys.readouterr().err
    assert dataplane(["graph", "nope", "--out", str(tmp_path / "g.png")]) == 2
    assert "unknown pipeline 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["sentiment", "telemetry"])
def test_an_unbounded_source_is_drawn_as_the_streaming_graph(name: str) -> None:
    from apache_beam.options.pipeline_options import StandardOptions

    pipeline = build_for_drawing(name, ["--source=kafka://127.0.0.1:9/tweets"])

    assert pipeline.options.view_as(StandardOptions).streaming
    assert ("Read", "Decode") in pipeline_graph(pipeline).edges
    names = {t.unique_name for t in pipeline.to_runner_api().components.transforms.values()}
    assert any(n.endswith("/Batch/Group/Batch") for n in names)  # the streaming batcher
