"""``dataplane graph``: the steps and edges of a pipeline, drawn to PNG or SVG."""

from __future__ import annotations

from pathlib import Path

import pytest

from runners.cli import main as dataplane
from runners.graph import build_for_drawing, pipeline_graph


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


@pytest.mark.parametrize(("name", "magic"), [("g.png", b"\x89PNG"), ("g.svg", b"<?xml")])
def test_the_cli_writes_an_image(tmp_path: Path, name: str, magic: bytes) -> None:
    out = tmp_path / name
    assert dataplane(["graph", "sentiment", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(magic)


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
