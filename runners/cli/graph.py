"""``dataplane graph PIPELINE --out FILE.png|svg``: a picture of a pipeline's steps.

The graph is read from the pipeline's portable proto (what every runner receives):
one box per top-level step, one arrow per PCollection flowing between steps, laid
out left to right by depth. Drawn with matplotlib, so no Graphviz binary is needed.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from schemas.errors import ConfigError

__all__ = [
    "Arrow",
    "PipelineGraph",
    "add_graph_command",
    "arrows",
    "draw",
    "layout",
    "pipeline_graph",
]

# Flags that let a pipeline be built for drawing when the user gives none (nothing
# is read or written while building).
_PLACEHOLDERS = {
    "source": "file:///data/input.jsonl",
    "output": "/lake/output",
    "dlq": "/lake/dead_letters",
    "readings_output": "/lake/readings",
    "late_output": "/lake/late",
}


@dataclass
class PipelineGraph:
    """Top-level steps (in pipeline order) and the edges between them."""

    steps: list[str] = field(default_factory=list)
    edges: set[tuple[str, str]] = field(default_factory=set)

    def depths(self) -> dict[str, int]:
        """Each step's longest distance from a step without inputs."""
        depth = dict.fromkeys(self.steps, 0)
        for _ in self.steps:  # the steps are few; relax until stable
            for before, after in self.edges:
                depth[after] = max(depth[after], depth[before] + 1)
        return depth


def pipeline_graph(pipeline: Any) -> PipelineGraph:
    """The top-level steps of a built pipeline and how PCollections connect them."""
    proto = pipeline.to_runner_api()
    transforms = proto.components.transforms
    top = [
        tid
        for root in proto.root_transform_ids
        for tid in (transforms[root].subtransforms or [root])
    ]
    producer = {pc: tid for tid in top for pc in transforms[tid].outputs.values()}
    graph = PipelineGraph(steps=[transforms[tid].unique_name for tid in top])
    for tid in top:
        for pc in transforms[tid].inputs.values():
            if pc in producer:
                before = transforms[producer[pc]].unique_name
                graph.edges.add((before, transforms[tid].unique_name))
    return graph


def build_for_drawing(name: str, flags: list[str]) -> Any:
    """Builds pipeline ``name`` with ``flags`` (placeholders for missing outputs).

    An unbounded source (Kafka, Kinesis, Pub/Sub without ``--bounded``) gives the
    streaming graph, as :func:`~beam_pipelines.launch.presets.resolve_runner` would run it.
    """
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from beam_pipelines.launch.launcher import discarded_unless_run
    from beam_pipelines.launch.options import SourceOptions
    from runners.cli.pipelines import pipeline_module
    from transforms.sources.uri import is_unbounded

    module = pipeline_module(name)
    given = {flag.split("=", 1)[0].lstrip("-") for flag in flags}
    defaults = [f"--{key}={value}" for key, value in _PLACEHOLDERS.items() if key not in given]
    options = PipelineOptions([*defaults, *flags])
    source = options.view_as(SourceOptions)
    if source.source and is_unbounded(
        source.source, bounded=source.bounded, max_records=source.max_records
    ):  # drawn as it runs: the streaming graph (batch steps refuse unbounded input)
        options.view_as(StandardOptions).streaming = True
    pipeline = beam.Pipeline(options=options)
    with discarded_unless_run(pipeline):  # drawn, never run
        module.build(pipeline, options)
    return pipeline


def _columns(graph: PipelineGraph) -> dict[int, list[str]]:
    """Steps by depth; each column ordered by where its inputs sit (fewer crossings)."""
    depth = graph.depths()
    columns: dict[int, list[str]] = {}
    for step in graph.steps:
        columns.setdefault(depth[step], []).append(step)
    row: dict[str, float] = {}
    for x in sorted(columns):

        def place(step: str) -> float:
            inputs = [
                row[before] for before, after in graph.edges if after == step and before in row
            ]
            return sum(inputs) / len(inputs) if inputs else 0.0

        columns[x].sort(key=place)
        row.update({step: float(n) for n, step in enumerate(columns[x])})
    return columns


Point = tuple[float, float]


def layout(graph: PipelineGraph) -> dict[str, Point]:
    """Each step's centre: columns by depth, left to right, each column centred."""
    columns = _columns(graph)
    tallest = max(len(column) for column in columns.values())
    return {
        step: (x * 3.0, (tallest - 1) / 2 - row)
        for x, column in columns.items()
        for row, step in enumerate(column)
    }


def arrows(graph: PipelineGraph, where: dict[str, Point]) -> dict[tuple[str, str], Arrow]:
    """Where each edge leaves and enters its boxes, and how much it bends.

    Edges into one step (a fan-in, e.g. every stage's dead letters into one Flatten)
    enter it at distinct heights and bend by distinct amounts, so none hides another;
    so do edges out of one step.

    >>> graph = PipelineGraph(["A", "B", "C", "D"], {("A", "B"), ("B", "C"), ("A", "D"),
    ...                                             ("B", "D"), ("C", "D")})
    >>> drawn = arrows(graph, layout(graph))
    >>> sorted({arrow.end for (_, after), arrow in drawn.items() if after == "D"})
    [(7.8, -0.2), (7.8, 0.0), (7.8, 0.2)]
    """
    drawn: dict[tuple[str, str], Arrow] = {}
    into: dict[str, list[tuple[str, str]]] = {}
    out_of: dict[str, list[tuple[str, str]]] = {}
    for edge in sorted(graph.edges, key=lambda e: (where[e[0]][0], -where[e[0]][1], e)):
        into.setdefault(edge[1], []).append(edge)
        out_of.setdefault(edge[0], []).append(edge)
    for edge in graph.edges:
        before, after = edge
        (x0, y0), (x1, y1) = where[before], where[after]
        leaving, entering = out_of[before], into[after]
        rise = _spread(leaving.index(edge), len(leaving))
        drop = _spread(entering.index(edge), len(entering))
        bend = _bend(round((x1 - x0) / 3.0), drop, fan_in=len(entering) > 1)
        drawn[edge] = Arrow((x0 + 1.2, round(y0 + rise, 6)), (x1 - 1.2, round(y1 + drop, 6)), bend)
    return drawn


@dataclass(frozen=True)
class Arrow:
    """One drawn edge: from ``start`` to ``end``, bent by ``bend`` (matplotlib's arc3 rad)."""

    start: Point
    end: Point
    bend: float


def _bend(span: int, drop: float, *, fan_in: bool) -> float:
    """Straight between neighbouring columns; an edge that skips columns arcs over them
    (the further, the higher), one of a fan-in bends towards where it enters."""
    if span > 1:
        return round(-(0.1 + 0.05 * span) * (1 if drop >= 0 else -1), 6)
    return -drop if fan_in else 0.0


def _spread(index: int, count: int) -> float:
    """Offsets of ``count`` ends on one box edge: 0 for one, else evenly around the centre,
    0.2 apart, closer when that would leave the box's height (±0.4)."""
    step = min(0.2, 0.8 / max(count - 1, 1))
    return round(((count - 1) / 2 - index) * step, 6)


def draw(graph: PipelineGraph, out: Path, title: str) -> None:
    """Draws ``graph`` left to right into ``out`` (format from its suffix)."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("drawing needs matplotlib: pip install 'beam-dataplane[viz]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = _columns(graph)
    tallest = max(len(column) for column in columns.values())
    where = layout(graph)
    drawn = arrows(graph, where)
    # Arcs are sized in inches (the figure is far wider than tall, so a bend in data
    # units would leave it): one that skips more columns rises a little higher.
    apexes = {edge: _apex_in(arrow) for edge, arrow in drawn.items()}
    headroom_in = max(apexes.values(), default=0.0)
    width_in, row_in = 3.0 * len(columns) + 1, 1.1
    figure, axes = plt.subplots(figsize=(width_in, row_in * tallest + 1.5 + 2 * headroom_in))
    for edge, arrow in sorted(drawn.items()):
        axes.annotate(
            "",
            xy=arrow.end,
            xytext=arrow.start,
            arrowprops={
                "arrowstyle": "->",
                "color": "#555555",
                "lw": 1.2,
                "connectionstyle": f"arc3,rad={_rad(arrow, apexes[edge], row_in):.4f}",
            },
            gid=f"edge {edge[0]} -> {edge[1]}",
        )
    for step, (x, y) in where.items():
        axes.text(
            x,
            y,
            step,
            ha="center",
            va="center",
            fontsize=9,
            bbox={"boxstyle": "round,pad=0.4", "fc": "#e8f0fe", "ec": "#1a56db"},
        )
    axes.set_xlim(-1.6, 3.0 * (len(columns) - 1) + 1.6)
    room = tallest / 2 + 0.5 + headroom_in / row_in
    axes.set_ylim(-room, room)
    axes.set_title(title)
    axes.axis("off")
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)


def _apex_in(arrow: Arrow) -> float:
    """How high (inches) an arc that skips columns rises above the straight line; 0 else."""
    span = round((arrow.end[0] - arrow.start[0] + 2.4) / 3.0)
    return 0.0 if span <= 1 else min(0.3 + 0.12 * (span - 2), 1.0)


def _rad(arrow: Arrow, apex_in: float, row_in: float) -> float:
    """matplotlib's arc3 ``rad`` for ``arrow``: its own bend, or one rising ``apex_in``."""
    if apex_in == 0.0:
        return arrow.bend
    (x0, y0), (x1, y1) = arrow.start, arrow.end
    length_in = math.hypot(x1 - x0, (y1 - y0) * row_in)  # about an inch per x unit
    return math.copysign(2 * apex_in / length_in, arrow.bend)


def add_graph_command(groups: Any) -> None:
    """Adds the ``graph`` subcommand to the ``dataplane`` parser."""
    graph = groups.add_parser(
        "graph",
        help="draw a pipeline's steps to a PNG or SVG file",
        description="Builds PIPELINE with the flags that follow (placeholders stand in for "
        "missing outputs) and draws its top-level steps and the data flowing between them.",
    )
    graph.add_argument("pipeline", metavar="PIPELINE")
    graph.add_argument("--out", type=Path, help="FILE.png or FILE.svg (also after PIPELINE)")
    graph.add_argument("flags", nargs=argparse.REMAINDER, help="the pipeline's flags")
    graph.set_defaults(run=_run_graph)


def _run_graph(args: argparse.Namespace) -> int:
    from beam_pipelines.launch.profiles import take_flag

    flags = list(args.flags)
    out = take_flag(flags, "--out")
    args.out = Path(out) if out else args.out
    if args.out is None:
        raise ConfigError("--out", "required, e.g. --out pipeline.png")
    if args.out.suffix.lower() not in (".png", ".svg"):
        raise ConfigError("--out", f"expected a .png or .svg file, got {args.out.name!r}")
    graph = pipeline_graph(build_for_drawing(args.pipeline, flags))
    draw(graph, args.out, f"{args.pipeline}: {len(graph.steps)} steps")
    print(f"wrote {args.out} ({len(graph.steps)} steps, {len(graph.edges)} edges)")
    return 0
