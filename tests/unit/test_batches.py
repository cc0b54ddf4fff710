"""Batches and rows: every row-wise transform gives the same rows and dead letters for both.

The pipelines carry records in batches (one element per fetch or bundle); users
apply the same transforms to single rows. Whatever the batching, the output rows,
their order within a batch, and the dead letters (reason, coordinates, original
bytes) must be the same.
"""

import json
import pickle

import apache_beam as beam
import pytest
from apache_beam.pvalue import TaggedOutput
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_stream import TestStream as EventStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.errors import ConfigError
from schemas.registry import LocalFileRegistry
from transforms.batches import Batch, PackBatches, Unbatch, items_of, split_batch
from transforms.featurize import CleanText
from transforms.featurize.sentiment import _ScoreSentimentDoFn
from transforms.featurize.text import _CleanTextDoFn
from transforms.record import coordinates_of, make_record
from transforms.sinks.batching import BatchByKey, BatchPolicy
from transforms.validate import _DecodeDoFn

TEXTS = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["I love it :)", "Worst. Service. Ever.", "meh &amp; \u200bok", "x" * 50]),
)
SLOW = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _chunks(items, sizes):
    """``items`` cut into Batches of the given sizes (cycled), as a pipeline would carry them."""
    out, at, n = [], 0, 0
    while at < len(items):
        size = sizes[n % len(sizes)]
        out.append(Batch(items[at : at + size]))
        at, n = at + size, n + 1
    return out


def _run(elements, *dofns):
    """(rows, dead letters) of ``dofns`` applied in turn to ``elements``, batches unbatched.

    The DoFns run as a runner runs them (setup, then process per element), so
    the comparison is of the transforms' own work, element by element.
    """
    rows, dead = list(elements), []
    for dofn in dofns:
        dofn.setup()
        out = []
        for element in rows:
            for result in dofn.process(element):
                if isinstance(result, TimestampedValue):  # a stamped row or batch
                    result = result.value
                if isinstance(result, TaggedOutput):
                    dead.append(result.value)
                else:
                    out.append(result)
        rows = out
    return [row for element in rows for row in items_of(element)], dead


def _by_id(rows):
    return sorted(rows, key=lambda r: r["_record_id"])


def _letters(dead):
    return sorted(
        ((d.record.record_id, d.stage, d.error_type, d.record.value) for d in dead),
        key=lambda t: t[0],
    )


def _rows(texts):
    rows = []
    for i, text in enumerate(texts):
        record = make_record(
            source="kafka", stream="t", partition=0, position=i, value=b"v", event_time_ms=i
        )
        row = {**coordinates_of(record), "_value": b"v", "_key": None, "_headers": []}
        if text is not None:
            row["text"] = text
        rows.append(row)
    return rows


@SLOW
@given(
    texts=st.lists(st.one_of(st.none(), TEXTS), max_size=25),
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=4),
)
def test_clean_text_and_sentiment_give_the_same_rows_for_rows_and_batches(texts, sizes):
    rows = _rows(texts)

    def stages():
        return _CleanTextDoFn(
            "text", "clean_text", {"remove_urls": True, "remove_mentions": False}
        ), _ScoreSentimentDoFn("text", 40, 0.05)

    one_by_one = _run(rows, *stages())
    batched = _run(_chunks(rows, sizes), *stages())
    assert _by_id(batched[0]) == _by_id(one_by_one[0])
    assert _letters(batched[1]) == _letters(one_by_one[1])
    # Every input is accounted for once: a row or a dead letter.
    assert len(one_by_one[0]) + len(one_by_one[1]) == len(rows)


def _tweet_value(kind, i):
    if kind == "good":
        return json.dumps(
            {
                "id": str(i),
                "created_at": "2024-01-01T00:00:00Z",
                "text": "hi",
                "lang": "en",
                "user": {"id": "1", "handle": "h"},
                "hashtags": [],
            }
        ).encode()
    if kind == "schema":
        return json.dumps({"id": i}).encode()
    if kind == "junk":
        return b"\xff\xfe not json"
    return None  # a tombstone


@SLOW
@given(
    kinds=st.lists(st.sampled_from(["good", "good", "schema", "junk", "none"]), max_size=25),
    sizes=st.lists(st.integers(1, 9), min_size=1, max_size=4),
)
def test_decoding_gives_the_same_rows_and_dead_letters_for_records_and_batches(kinds, sizes):
    records = [
        make_record(
            source="kafka",
            stream="tweets",
            partition=1,
            position=i,
            value=_tweet_value(kind, i),
            event_time_ms=i,
        )
        for i, kind in enumerate(kinds)
    ]

    def decode():
        registry = LocalFileRegistry()
        return _DecodeDoFn(registry, registry.latest("tweet"), "auto")

    one_by_one = _run(records, decode())
    batched = _run(_chunks(records, sizes), decode())
    assert _by_id(batched[0]) == _by_id(one_by_one[0])
    assert _letters(batched[1]) == _letters(one_by_one[1])
    assert len(one_by_one[0]) == kinds.count("good")
    assert len(one_by_one[1]) == len(kinds) - kinds.count("good")


def test_a_batch_keeps_its_rows_in_order_through_the_transforms():
    rows = _rows([f"text number {i} &amp; more" for i in range(30)])
    with beam.Pipeline(runner=FnApiRunner()) as p:
        cleaned, _ = p | beam.Create([Batch(rows)]) | CleanText()
        positions = cleaned | beam.Map(lambda b: [r["_position"] for r in b])
        assert_that(positions, equal_to([[str(i) for i in range(30)]]))


@settings(max_examples=20, deadline=None)
@given(count=st.integers(0, 60), max_size=st.integers(1, 16))
def test_pack_batches_keeps_every_element_once_within_the_size(count, max_size):
    with beam.Pipeline(runner=FnApiRunner()) as p:
        packed = p | beam.Create(list(range(count)), reshuffle=False) | PackBatches(max_size)
        sizes = packed | "Sizes" >> beam.Map(len)
        assert_that(
            sizes | "Over" >> beam.Filter(lambda n: n > max_size or n == 0),
            equal_to([]),
            label="within the size",
        )
        assert_that(packed | Unbatch(), equal_to(list(range(count))), label="every element")


def test_a_batch_is_stamped_with_its_earliest_element():
    stamped = [TimestampedValue(n, ts) for n, ts in [(1, 50), (2, 10), (3, 30)]]
    with beam.Pipeline(runner=FnApiRunner()) as p:
        packed = (
            p
            | beam.Create(stamped, reshuffle=False)  # elements stamped 50, 10 and 30 s
            | PackBatches()
        )
        times = packed | beam.Map(lambda b, ts=beam.DoFn.TimestampParam: (sorted(b), ts.micros))
        assert_that(times, equal_to([([1, 2, 3], 10_000_000)]))


def test_pack_batches_refuses_a_size_that_is_not_positive():
    with pytest.raises(ConfigError, match="max_size"):
        PackBatches(0)


def test_the_sink_batcher_cuts_batches_at_its_size():
    batches = [Batch(range(n * 10, n * 10 + 7)) for n in range(5)]  # 35 rows in 5 batches
    with beam.Pipeline(runner=FnApiRunner()) as p:
        keyed = p | beam.Create(batches, reshuffle=False) | beam.Map(lambda b: ("t", b))
        cut = keyed | BatchByKey(BatchPolicy(10, 5.0), name="t", same_on_rerun=False)
        sizes = cut | beam.Map(lambda kv: len(kv[1]))
        assert_that(sizes | "Over" >> beam.Filter(lambda n: n > 10), equal_to([]), label="size")
        rows = cut | beam.FlatMap(lambda kv: kv[1])
        assert_that(rows, equal_to([r for b in batches for r in b]), label="every row once")


def test_split_batch_and_items_of():
    kept, letters = split_batch(Batch([1, 2]), lambda n: n + 1)
    assert (kept, letters, type(kept)) == ([2, 3], [], Batch)
    assert items_of(5) == [5]


def test_a_batch_pickles_as_a_batch():
    batch = Batch(
        [
            {"a": 1},
            make_record(
                source="file", stream="f", partition=0, position=0, value=b"x", event_time_ms=0
            ),
        ]
    )
    again = pickle.loads(pickle.dumps(batch))
    assert type(again) is Batch and again == batch
    coder = beam.coders.registry.get_coder(Batch)
    assert coder.decode(coder.encode(batch)) == batch
    assert type(coder.decode(coder.encode(batch))) is Batch


READINGS = st.lists(
    st.tuples(st.sampled_from(["v1", "v2", "v3"]), st.integers(0, 1_500), st.integers(0, 200)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=12, deadline=None)
@given(groups=st.lists(READINGS, min_size=1, max_size=4), early=st.sampled_from([None, 2]))
def test_windowed_aggregate_fires_the_same_panes_for_rows_and_batches(groups, early):
    """Each group arrives, then the watermark passes its latest reading: panes (on time,
    late, early) and too-late readings are the same whether a group comes as rows or as
    one batch."""
    from tests.unit.test_windowed import reading, run_stream, summary

    def stream(batched):
        events, n, watermark = EventStream(), 0, -1
        for group in groups:
            rows = []
            for vehicle, t_s, speed in group:
                rows.append(reading(vehicle, t_s, float(speed), rid=f"{vehicle}#{n}"))
                n += 1
            if batched:
                oldest = min(r["_event_time_ms"] for r in rows) / 1000
                events = events.add_elements([TimestampedValue(Batch(rows), oldest)])
            else:
                events = events.add_elements(
                    [TimestampedValue(r, r["_event_time_ms"] / 1000) for r in rows]
                )
            mark = max(t for _v, t, _s in group) + 1
            if mark > watermark:  # a TestStream's watermark only moves forward
                events, watermark = events.advance_watermark_to(mark), mark
        return events.advance_watermark_to_infinity()

    args = {"size_s": 300, "allowed_lateness_s": 60, "early_after_count": early}
    panes, late = run_stream(stream(False), **args)
    batched_panes, batched_late = run_stream(stream(True), **args)
    assert sorted(map(summary, batched_panes)) == sorted(map(summary, panes))
    assert sorted(r["_record_id"] for r in batched_late) == sorted(r["_record_id"] for r in late)
    # Fixed windows: each reading is in exactly one window's records, or too late.
    window_records: dict[tuple, int] = {}
    for p in panes:
        where = (p["vehicle_id"], p["window_start_ms"])
        window_records[where] = max(window_records.get(where, 0), p["window_records"])
    assert sum(window_records.values()) + len(late) == sum(len(g) for g in groups)


@SLOW
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "ts": st.one_of(st.none(), st.integers(0, 2**40), st.just("not a time")),
                "lat": st.one_of(st.floats(-100, 100), st.none()),
                "lon": st.one_of(st.floats(-200, 200), st.none()),
                "speed_kph": st.floats(-10, 400),
            }
        ),
        max_size=20,
    ),
    sizes=st.lists(st.integers(1, 6), min_size=1, max_size=3),
)
def test_event_time_bounds_and_geohash_give_the_same_rows_for_rows_and_batches(rows, sizes):
    from transforms.featurize.bounds import TELEMETRY_BOUNDS, _CheckBoundsDoFn
    from transforms.featurize.event_time import _ExtractEventTimeDoFn
    from transforms.featurize.geo import _GeohashDoFn

    base = _rows(["x"] * len(rows))
    inputs = [{**b, **r} for b, r in zip(base, rows, strict=True)]
    bounds = {k: v for k, v in TELEMETRY_BOUNDS.items() if k == "speed_kph"}

    def stages():
        return (
            _ExtractEventTimeDoFn("ts"),
            _CheckBoundsDoFn(bounds, "physics"),
            _GeohashDoFn("lat", "lon", 6, "geohash"),
        )

    one_rows, one_dead = _run(inputs, *stages())
    batch_rows, batch_dead = _run(_chunks(inputs, sizes), *stages())
    assert _by_id(batch_rows) == _by_id(one_rows)
    assert _letters(batch_dead) == _letters(one_dead)
    assert len(one_rows) + len(one_dead) == len(inputs)
