"""``dataplane pipelines`` and ``dataplane run PIPELINE [flags]``: pipelines by name."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from schemas.errors import ConfigError

__all__ = ["PIPELINES", "add_pipeline_commands", "describe", "pipeline_module"]

# Name → module; each module has main(argv) -> int and a docstring whose first line says
# what it does.
PIPELINES = {
    "sentiment": "beam_pipelines.sentiment",
    "telemetry": "beam_pipelines.telemetry",
}


def describe(name: str) -> str:
    """The first line of a pipeline module's docstring.

    >>> describe("telemetry")
    'The telemetry pipeline: 5-minute average speed per vehicle in event time.'
    """
    doc = importlib.import_module(PIPELINES[name]).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def add_pipeline_commands(groups: Any) -> None:
    """Adds ``pipelines`` and ``run`` to the ``dataplane`` parser."""
    listing = groups.add_parser("pipelines", help="list the runnable pipelines")
    listing.set_defaults(run=_list_pipelines)
    run = groups.add_parser(
        "run",
        help="run a pipeline with Beam flags, e.g. dataplane run telemetry --help",
        description="Runs PIPELINE with the flags that follow (its own and Beam's, e.g. "
        "--runner). `dataplane run PIPELINE --help` lists them.",
        add_help=True,
    )
    run.add_argument("pipeline", metavar="PIPELINE", help=f"one of: {', '.join(PIPELINES)}")
    run.add_argument("flags", nargs=argparse.REMAINDER, help="the pipeline's flags")
    run.set_defaults(run=_run_pipeline)


def _list_pipelines(_args: argparse.Namespace) -> int:
    width = max(map(len, PIPELINES))
    for name in PIPELINES:
        print(f"{name:<{width}}  {describe(name)}")
    return 0


def pipeline_module(name: str) -> Any:
    """The module of pipeline ``name``; ConfigError listing the pipelines when unknown."""
    if name not in PIPELINES:
        raise ConfigError(
            "PIPELINE", f"unknown pipeline {name!r}; expected one of {', '.join(PIPELINES)}"
        )
    return importlib.import_module(PIPELINES[name])


def _run_pipeline(args: argparse.Namespace) -> int:
    return int(pipeline_module(args.pipeline).main(args.flags))
