"""`dataplane graph` layout: edges into (or out of) one step never sit on one another."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runners.cli.graph import PipelineGraph, arrows, build_for_drawing, layout, pipeline_graph


@st.composite
def dags(draw: st.DrawFn) -> PipelineGraph:
    count = draw(st.integers(2, 9))
    steps = [f"S{n}" for n in range(count)]
    pairs = [(a, b) for i, a in enumerate(steps) for b in steps[i + 1 :]]
    edges = draw(st.sets(st.sampled_from(pairs), min_size=1))
    return PipelineGraph(steps, set(edges))


@given(dags())
def test_edges_sharing_a_step_have_distinct_ends_there(graph: PipelineGraph) -> None:
    where = layout(graph)
    drawn = arrows(graph, where)
    assert set(drawn) == graph.edges
    for step in graph.steps:
        entering = [drawn[e] for e in graph.edges if e[1] == step]
        leaving = [drawn[e] for e in graph.edges if e[0] == step]
        assert len({(a.end, a.bend) for a in entering}) == len(entering)
        assert len({a.start for a in leaving}) == len(leaving)
        x, y = where[step]
        assert all(a.end[0] < x and abs(a.end[1] - y) < 0.5 for a in entering)
        assert all(a.start[0] > x and abs(a.start[1] - y) < 0.5 for a in leaving)


@given(dags())
def test_an_edge_that_skips_columns_arcs_and_a_neighbouring_one_is_straight(
    graph: PipelineGraph,
) -> None:
    where = layout(graph)
    for (before, after), arrow in arrows(graph, where).items():
        span = round((where[after][0] - where[before][0]) / 3.0)
        fan_in = sum(1 for e in graph.edges if e[1] == after) > 1
        if span > 1:
            assert arrow.bend != 0
        elif not fan_in:
            assert arrow.bend == 0


def test_the_sentiment_dead_letter_fan_in_is_drawn_as_one_arrow_each() -> None:
    graph = pipeline_graph(build_for_drawing("sentiment", []))
    drawn = arrows(graph, layout(graph))
    into = {
        before: drawn[(before, after)] for before, after in graph.edges if after == "AllDeadLetters"
    }
    assert {"Decode", "Clean", "Score"} <= set(into)  # and the output's misfits
    assert len({arrow.end for arrow in into.values()}) == len(into)
