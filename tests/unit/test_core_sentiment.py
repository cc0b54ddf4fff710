"""ScoreSentiment over batches: the same rows, dead letters and counters as one by one.

The sentiment pipeline carries rows in batches (``transforms.batches``); users apply
``ScoreSentiment`` to single rows. ``tests/unit/test_batches.py`` compares the rows
and dead letters of the scoring step itself; here the whole transform runs on the
in-process runner and its Beam counters (``scored``, ``dead_letters``) are compared
too, with batches that hold only dead letters; and a text the analyzer fails on is
counted under the sentiment stage's poison counters.
"""

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

import transforms.featurize.sentiment as sentiment
from transforms.batches import PackBatches, Unbatch
from transforms.featurize import ScoreSentiment

_KEPT: dict[str, list] = {}
TEXTS = ["what a great day", None, "this is awful", "x" * 50, "the sky is blue", 12]


class _Keep(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, element):
        _KEPT.setdefault(self._key, []).append(element)


def _rows(texts):
    coordinates = {"_source": "kafka", "_stream": "t", "_partition": "0", "_event_time_ms": 0}
    return [
        {**coordinates, "_record_id": f"r{n}", "_position": str(n), "text": t}
        for n, t in enumerate(texts)
    ]


def _score_all(texts, batch_size):
    """Scored rows, dead letters and counters of ScoreSentiment over rows holding
    ``texts``, fed one by one (``batch_size`` None) or in batches."""
    _KEPT.clear()
    pipeline = beam.Pipeline(runner=FnApiRunner())
    elements = pipeline | beam.Create(_rows(texts))
    if batch_size is not None:
        elements = elements | PackBatches(max_size=batch_size)
    scored, dead = elements | ScoreSentiment(max_chars=40)
    _ = scored | "Rows" >> Unbatch() | "KeepRows" >> beam.ParDo(_Keep("rows"))
    _ = dead | "KeepDead" >> beam.ParDo(_Keep("dead"))
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace("dataplane.sentiment"))
    counters = {c.key.metric.name: c.committed for c in query["counters"]}
    rows = sorted(
        (r["_record_id"], r["sentiment_label"], r["sentiment_compound"])
        for r in _KEPT.get("rows", [])
    )
    dead = sorted((d.record.position, d.error_type) for d in _KEPT.get("dead", []))
    return rows, dead, counters


@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_batches_score_to_the_same_rows_dead_letters_and_counters(batch_size):
    one_by_one = _score_all(TEXTS, None)
    rows, dead, counters = one_by_one
    assert [(r, label) for r, label, _ in rows] == [
        ("r0", "positive"),
        ("r2", "negative"),
        ("r4", "neutral"),
    ]
    assert [reason for _, reason in dead] == ["MissingField", "TextTooLong", "MissingField"]
    assert counters == {"scored": 3, "dead_letters": 3}
    assert _score_all(TEXTS, batch_size) == one_by_one


def test_a_batch_of_dead_letters_only_gives_no_rows():
    rows, dead, counters = _score_all([None, 12], 10)
    assert rows == [] and len(dead) == 2
    assert counters.get("scored", 0) == 0 and counters["dead_letters"] == 2


class _FailsOnBoom:
    """Stands in for a VADER analyzer that fails on one text (a poison record)."""

    def polarity_scores(self, text):
        if "boom" in text:
            raise ValueError("cannot score")
        return {"neg": 0.0, "neu": 1.0, "pos": 0.0, "compound": 0.0}


def test_a_text_the_analyzer_fails_on_is_counted_as_poison_of_the_sentiment_stage(monkeypatch):
    monkeypatch.setattr(sentiment, "_shared_analyzer", _FailsOnBoom)
    pipeline = beam.Pipeline(runner=FnApiRunner())
    _ = pipeline | beam.Create(_rows(["fine", "boom"])) | ScoreSentiment()
    result = pipeline.run()
    result.wait_until_finish()
    query = result.metrics().query(MetricsFilter().with_namespace("dataplane.poison"))
    counters = {c.key.metric.name: c.committed for c in query["counters"]}
    assert counters == {"sentiment.failed_attempts": 3, "sentiment.dead_letters": 1}
