"""``dataplane report TABLE --out FILE.png``: events over time and the value distribution.

The left panel counts rows per event-time bucket (``_event_time``, or
``window_start`` for aggregate tables), the bucket size chosen from the time span.
The right panel shows the sentiment distribution (a histogram of the compound
score, coloured by label) for sentiment tables, or the speed distribution for
telemetry tables.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from runners.cli.tables import add_storage_option_flag, read_table_arg
from schemas.errors import ConfigError

__all__ = ["add_report_command", "draw_report", "events_per_bucket"]

_TIME_COLUMNS = ("_event_time", "window_start", "ts")
_BUCKETS_S = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400)
_LABEL_COLOURS = {"negative": "#d9534f", "neutral": "#9e9e9e", "positive": "#5cb85c"}


def events_per_bucket(table: pa.Table) -> tuple[str, int, list[tuple[int, int]]]:
    """(time column, bucket seconds, [(bucket start epoch s, rows)]) for ``table``.

    The bucket is the smallest of 1 s, 10 s, 1 min, 5 min, 15 min, 1 h, 6 h and 1 day
    that gives at most 120 bars, and never finer than the times themselves: 5-minute
    windows are counted per 5 minutes (or more), not in 10-second bars with gaps.

    >>> t = pa.table({"_event_time": pa.array([0, 61_000, 62_000], pa.timestamp("ms"))})
    >>> events_per_bucket(t)
    ('_event_time', 1, [(0, 1), (61, 1), (62, 1)])
    >>> starts = pa.array([0, 0, 300_000, 900_000], pa.timestamp("ms"))
    >>> events_per_bucket(pa.table({"window_start": starts}))
    ('window_start', 300, [(0, 2), (300, 1), (900, 1)])
    """
    column = next((c for c in _TIME_COLUMNS if c in table.column_names), None)
    if column is None:
        raise ConfigError("TABLE", f"has no event-time column (one of {', '.join(_TIME_COLUMNS)})")
    millis = pc.cast(table[column].cast(pa.timestamp("ms")), pa.int64()).drop_null().to_pylist()
    if not millis:
        return column, 60, []
    seconds = [m // 1000 for m in millis]
    span = max(seconds) - min(seconds)
    step = _granularity_s(millis)
    bucket = next(
        (b for b in sorted({*_BUCKETS_S, step}) if b >= step and span / b <= 120),
        max(_BUCKETS_S[-1], step),
    )
    counts: dict[int, int] = {}
    for value in seconds:
        start = value - value % bucket
        counts[start] = counts.get(start, 0) + 1
    return column, bucket, sorted(counts.items())


def _granularity_s(millis: list[int]) -> int:
    """The whole seconds every time is a multiple of, apart from the first (1 at least)."""
    first = min(millis)
    common = 0
    for value in millis:
        common = math.gcd(common, value - first)
        if 0 < common < 1000:
            return 1
    return max(common // 1000, 1)


def draw_report(table: pa.Table, out: Path, title: str) -> str:
    """Draws the report of ``table`` into ``out``; returns what the right panel shows."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("drawing needs matplotlib: pip install 'beam-dataplane[viz]'") from None
    matplotlib.use("Agg")
    from datetime import datetime, timezone

    import matplotlib.pyplot as plt

    column, bucket, counts = events_per_bucket(table)
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    times = [datetime.fromtimestamp(start, tz=timezone.utc) for start, _ in counts]
    left.bar(times, [n for _, n in counts], width=bucket / 86400 * 0.9, color="#1a56db")
    left.set_title(f"rows per {bucket} s of {column} (UTC)")
    left.set_ylabel("rows")
    left.tick_params(axis="x", labelrotation=30)
    shown = _distribution(table, right)
    figure.suptitle(f"{title} · {table.num_rows:,} rows")
    figure.tight_layout()
    figure.savefig(out)
    plt.close(figure)
    return shown


def _distribution(table: pa.Table, axes: Any) -> str:
    if "sentiment_compound" in table.column_names:
        labels = table["sentiment_label"].to_pylist()
        scores = table["sentiment_compound"].to_pylist()
        for label, colour in _LABEL_COLOURS.items():
            values = [s for s, lab in zip(scores, labels, strict=True) if lab == label]
            axes.hist(
                values, bins=40, range=(-1, 1), color=colour, label=f"{label} ({len(values):,})"
            )
        axes.set_title("sentiment: VADER compound score")
        axes.legend()
        return "sentiment"
    for column in ("speed_kph", "avg_speed_kph"):
        if column in table.column_names:
            axes.hist(table[column].drop_null().to_pylist(), bins=40, color="#1a56db")
            axes.set_title(f"distribution of {column}")
            return column
    axes.axis("off")
    return "none"


def add_report_command(groups: Any) -> None:
    """Adds the ``report`` subcommand to the ``dataplane`` parser."""
    report = groups.add_parser(
        "report",
        help="draw events over time and the sentiment (or speed) distribution of a table",
    )
    report.add_argument("table", help="Delta table or Parquet directory: path, s3:// or gs://")
    report.add_argument("--out", required=True, type=Path, help="FILE.png or FILE.svg")
    add_storage_option_flag(report)
    report.set_defaults(run=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() not in (".png", ".svg"):
        raise ConfigError("--out", f"expected a .png or .svg file, got {args.out.name!r}")
    table = read_table_arg(args.table, args.storage_option)
    shown = draw_report(table, args.out, args.table)
    print(f"wrote {args.out} ({table.num_rows:,} rows; right panel: {shown})")
    return 0
