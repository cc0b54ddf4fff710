"""README claim: what the progress display shows.

"On a terminal a streaming run shows a live status line; off a terminal it logs one line every
`--progress_interval_s` (default 10 s): records read and per second, rows committed per table,
lag per partition or shard, and the output watermark (the lowest of the sources')." and "On a
terminal, a bounded run shows records read and rows committed as it goes".

The line is checked for what it says about counts a real run made, never for when it appears.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rich.console import Console

from beam_pipelines import sentiment
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from beam_pipelines.launch.summary import ProgressMeter, progress_display
from transforms.progress import LOCAL_GAUGES, set_gauge


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the progress display wrote nothing in time"
        time.sleep(0.01)


@pytest.fixture
def no_gauges() -> Iterator[None]:
    """No gauges of other tests before, and none of this test's after."""
    LOCAL_GAUGES.clear()
    yield
    LOCAL_GAUGES.clear()


def test_the_line_counts_a_runs_records_and_rows_per_table(tmp_path: Path, no_gauges: None) -> None:
    messages = list(generate_tweets(40, bad_ratio=0.1, seed=4))
    bad = sum(m.kind != "tweet" for m in messages)
    assert 0 < bad < 40
    publish(f"file://{tmp_path}/tweets.jsonl", messages)
    out, dlq = str(tmp_path / "out"), str(tmp_path / "dlq")
    meter = ProgressMeter({"output": out, "dead letters": dlq})  # counts from here on
    sentiment.run([f"--source=file://{tmp_path}/tweets.jsonl", f"--output={out}", f"--dlq={dlq}"])
    line = meter.line()
    assert "· 40 records read (" in line
    assert f"rows committed: output {40 - bad}, dead letters {bad}" in line
    # A second meter counts only what came after it.
    later = ProgressMeter({"output": out}).line()
    assert "· 0 records read (" in later and "rows committed: output 0" in later


def test_lag_per_partition_or_shard_and_the_lowest_source_watermark(no_gauges: None) -> None:
    set_gauge("lag_records kafka tweets[0]", 12)
    set_gauge("lag_records kafka tweets[1]", 0)
    set_gauge("lag_ms kinesis clicks[shardId-000000000001]", 2500)
    set_gauge("watermark_ms kafka tweets[0]", 1_793_491_260_000)  # 2026-11-01T00:01:00Z
    set_gauge("watermark_ms kafka tweets[1]", 1_793_491_200_000)  # 2026-11-01T00:00:00Z
    set_gauge("watermark_ms kinesis clicks", 1_793_491_320_000)
    line = ProgressMeter({}).line()
    assert (
        "lag kafka tweets[0] 12 records, kafka tweets[1] 0 records, "
        "kinesis clicks[shardId-000000000001] 2,500 ms" in line
    )
    assert line.endswith("watermark 2026-11-01T00:00:00Z")


def test_off_a_terminal_a_streaming_run_logs_lines_and_a_bounded_one_none(
    no_gauges: None,
) -> None:
    logged = io.StringIO()
    console = Console(file=logged, width=400)
    set_gauge("lag_records kafka t[0]", 3)
    with progress_display(terminal=False, log_every_s=0.05, console=console):
        _wait_for(lambda: logged.getvalue().count("\n") >= 2)
    lines = logged.getvalue().splitlines()
    assert all(re.search(r"\d+ records read \(\d+/s\)", line) for line in lines)
    assert all("lag kafka t[0] 3 records" in line for line in lines)

    quiet = io.StringIO()
    with progress_display(terminal=False, log_every_s=None, console=Console(file=quiet)):
        set_gauge("lag_records kafka t[0]", 4)
    assert quiet.getvalue() == ""


def test_on_a_terminal_a_status_line_is_shown(no_gauges: None) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=400)
    set_gauge("lag_records kafka t[0]", 5)
    with progress_display(terminal=True, console=console, interval_s=0.05):
        _wait_for(lambda: "lag kafka t[0] 5 records" in screen.getvalue())
    assert "records read" in screen.getvalue()
