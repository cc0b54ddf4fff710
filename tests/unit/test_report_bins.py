"""`dataplane report` bins: never finer than the table's times, at most 120 bars, every row."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from runners.cli.report import events_per_bucket

DAY_S = 86_400


@given(
    window_s=st.sampled_from([60, 300, 900, 3600]),
    windows=st.lists(st.integers(0, 400), min_size=1, max_size=200),
    origin=st.integers(0, 10_000).map(lambda n: n * DAY_S),
)
def test_window_tables_are_binned_by_whole_windows(window_s, windows, origin) -> None:
    starts = [(origin + n * window_s) * 1000 for n in windows]
    column, bucket, counts = events_per_bucket(
        pa.table({"window_start": pa.array(starts, pa.timestamp("ms"))})
    )
    assert column == "window_start"
    if len(set(windows)) > 1:  # one window alone says nothing of the size
        assert bucket >= window_s
    assert sum(n for _, n in counts) == len(starts)
    assert all(start % bucket == 0 for start, _ in counts)
    span = (max(windows) - min(windows)) * window_s
    assert span / bucket <= 120 or bucket == DAY_S


@given(st.lists(st.integers(0, 10 * DAY_S * 1000), min_size=1, max_size=300))
def test_event_times_keep_every_row_in_at_most_120_bars(millis) -> None:
    _, bucket, counts = events_per_bucket(
        pa.table({"_event_time": pa.array(millis, pa.timestamp("ms"))})
    )
    assert sum(n for _, n in counts) == len(millis)
    assert len(counts) <= 121 or bucket == DAY_S
    for value in millis:
        second = value // 1000
        assert (second - second % bucket) in dict(counts)
