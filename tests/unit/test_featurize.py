import math
import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from hypothesis import given
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from schemas.errors import ConfigError
from transforms.featurize import CleanText, ScoreSentiment
from transforms.featurize.sentiment import sentiment_label
from transforms.featurize.text import clean_text

COORDS = {
    "_record_id": "r",
    "_source": "kafka",
    "_stream": "t",
    "_partition": "0",
    "_position": "5",
    "_event_time_ms": 0,
}
TEXTS = [
    "I love it!!! 😍",
    "This is NOT good at all :(",
    "The sky is blue.",
    "Not bad, but kind of meh",
    "Ça ne marche pas, c'est nul",
    "GREAT service, thx @bob",
]


def test_scores_equal_vader_sentiment_exactly():
    analyzer = SentimentIntensityAnalyzer()
    expected = [(t, analyzer.polarity_scores(t)) for t in TEXTS]
    with TestPipeline() as p:
        scored, _ = p | beam.Create([{**COORDS, "text": t} for t in TEXTS]) | ScoreSentiment()
        got = scored | beam.Map(
            lambda r: (
                r["text"],
                {
                    "neg": r["sentiment_neg"],
                    "neu": r["sentiment_neu"],
                    "pos": r["sentiment_pos"],
                    "compound": r["sentiment_compound"],
                },
            )
        )
        assert_that(got, equal_to(expected))


def test_too_long_and_missing_texts_are_dead_letters_not_stalls():
    adversarial = " ".join(["not", "very", "good", "but", "bad!!"] * 2000)
    rows = [{**COORDS, "text": adversarial}, {**COORDS, "text": None}, {**COORDS, "body": "x"}]
    started = time.perf_counter()
    with TestPipeline() as p:
        scored, dead = p | beam.Create(rows) | ScoreSentiment(max_chars=2000)
        assert_that(scored, equal_to([]), label="none scored")
        assert_that(
            dead | beam.Map(lambda d: (d.error_type, d.stage, d.record.position)),
            equal_to(
                [
                    ("TextTooLong", "sentiment", "5"),
                    ("MissingField", "sentiment", "5"),
                    ("MissingField", "sentiment", "5"),
                ]
            ),
            label="dead",
        )
    # vaderSentiment alone takes seconds on this text; rejecting it must not.
    assert time.perf_counter() - started < 30


def test_dead_letter_keeps_the_row_as_json():
    with TestPipeline() as p:
        _, dead = p | beam.Create([{**COORDS, "text": 12}]) | ScoreSentiment()
        assert_that(dead | beam.Map(lambda d: d.record.value), equal_to([b'{"text": 12}']))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_chars": 0}, "max_chars: must be a positive number of characters, got 0"),
        ({"label_threshold": 1.5}, r"label_threshold: must be within \[0, 1\], got 1.5"),
    ],
)
def test_score_sentiment_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ScoreSentiment(**kwargs)


def test_clean_text_keeps_the_original_and_cleans_a_copy():
    with TestPipeline() as p:
        rows, dead = p | beam.Create([{**COORDS, "text": "Hi&amp;bye  http://x.y"}]) | CleanText()
        assert_that(
            rows | beam.Map(lambda r: (r["text"], r["clean_text"])),
            equal_to([("Hi&amp;bye  http://x.y", "Hi&bye")]),
            label="rows",
        )
        assert_that(dead, equal_to([]), label="dead")


def test_clean_text_rules():
    assert clean_text("a\u0000b\u200bc\n\nd") == "abc d"
    assert clean_text("@ann hi www.x.com", remove_mentions=True) == "hi"
    assert clean_text("\uff48\uff45\uff4c\uff4c\uff4f") == "hello"  # full-width letters


# --- sentiment labels at and around their thresholds -----------------------------------


@pytest.mark.parametrize(
    ("compound", "label"),
    [
        (0.05, "positive"),  # at the default threshold
        (math.nextafter(0.05, 1.0), "positive"),
        (math.nextafter(0.05, 0.0), "neutral"),  # just below it
        (0.0, "neutral"),
        (math.nextafter(-0.05, 0.0), "neutral"),
        (-0.05, "negative"),  # at the negative threshold
        (math.nextafter(-0.05, -1.0), "negative"),
        (1.0, "positive"),
        (-1.0, "negative"),
    ],
)
def test_sentiment_label_at_and_around_the_default_threshold(compound, label):
    assert sentiment_label(compound) == label


_UNIT = st.floats(min_value=-1.0, max_value=1.0, allow_nan=False)
_THRESHOLD = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(compound=_UNIT, threshold=_THRESHOLD)
def test_sentiment_label_is_the_documented_reading_of_the_threshold(compound, threshold):
    # The documented rule: |compound| at or above the threshold is positive/negative.
    label = sentiment_label(compound, threshold)
    assert (label == "positive") == (compound >= threshold)
    assert (label == "negative") == (compound <= -threshold and compound < threshold)
    assert label in ("positive", "neutral", "negative")


@given(threshold=_THRESHOLD.filter(lambda t: t > 0.0))
def test_the_threshold_itself_labels_and_the_float_inside_it_does_not(threshold):
    assert sentiment_label(threshold, threshold) == "positive"
    assert sentiment_label(-threshold, threshold) == "negative"
    inside = math.nextafter(threshold, 0.0)
    assert sentiment_label(inside, threshold) == "neutral"
    assert sentiment_label(-inside, threshold) == "neutral"


@given(compound=_UNIT, threshold=_THRESHOLD.filter(lambda t: t > 0.0))
def test_sentiment_labels_mirror_around_zero(compound, threshold):
    mirror = {"positive": "negative", "negative": "positive", "neutral": "neutral"}
    assert sentiment_label(-compound, threshold) == mirror[sentiment_label(compound, threshold)]


# VADER compounds of these texts (checked against vaderSentiment in the first case).
LABEL_TEXTS = {"ok": 0.296, "fine": 0.2023, "meh": -0.0772, "bad": -0.5423, "not bad": 0.431}


def _labels(texts, **kwargs):
    with TestPipeline() as p:
        scored, _ = (
            p | beam.Create([{**COORDS, "text": t} for t in texts]) | ScoreSentiment(**kwargs)
        )
        labels = scored | beam.Map(lambda r: (r["text"], r["sentiment_label"]))
        assert_that(labels, equal_to(list(texts.items())))


def test_label_texts_have_the_compounds_the_label_tests_rely_on():
    analyzer = SentimentIntensityAnalyzer()
    assert {t: analyzer.polarity_scores(t)["compound"] for t in LABEL_TEXTS} == LABEL_TEXTS


def test_score_sentiment_labels_with_the_default_threshold():
    _labels({"meh": "negative", "The sky is blue.": "neutral", "fine": "positive"})


def test_score_sentiment_labels_with_its_label_threshold_inclusive():
    # 0.296 is exactly the compound of "ok": at the threshold is positive.
    _labels(
        {"ok": "positive", "fine": "neutral", "meh": "neutral", "bad": "negative"},
        label_threshold=0.296,
    )
    # 0.5423 is exactly -compound of "bad": at the threshold is negative.
    _labels({"bad": "negative", "not bad": "neutral", "ok": "neutral"}, label_threshold=0.5423)


@pytest.mark.parametrize("threshold", [0.0, 1.0])
def test_label_threshold_accepts_both_ends_of_its_range(threshold):
    assert ScoreSentiment(label_threshold=threshold)._threshold == threshold


@pytest.mark.parametrize("threshold", [math.nextafter(0.0, -1.0), math.nextafter(1.0, 2.0)])
def test_label_threshold_refuses_just_outside_its_range(threshold):
    with pytest.raises(ConfigError, match=r"label_threshold: must be within \[0, 1\]"):
        ScoreSentiment(label_threshold=threshold)


# --- limits, messages, counters -------------------------------------------------------------


def _sentiment_run(rows, **kwargs):
    p = TestPipeline()
    scored, _ = p | beam.Create(rows) | ScoreSentiment(**kwargs)
    _ = scored | "ScoredTexts" >> beam.Map(lambda r: r["text"])
    result = p.run()
    result.wait_until_finish()
    return {
        c.key.metric.name: c.committed
        for c in result.metrics().query()["counters"]
        if c.key.metric.namespace == "dataplane.sentiment"
    }


def test_a_text_of_max_chars_is_scored_and_one_more_is_too_long():
    with TestPipeline() as p:
        rows = [{**COORDS, "text": "a" * 10}, {**COORDS, "text": "b" * 11}]
        scored, dead = p | beam.Create(rows) | ScoreSentiment(max_chars=10)
        assert_that(scored | beam.Map(lambda r: r["text"]), equal_to(["a" * 10]), label="scored")
        assert_that(
            dead | beam.Map(lambda d: (d.error_type, d.message)),
            equal_to(
                [
                    (
                        "TextTooLong",
                        "text has 11 characters, more than max_chars=10 (VADER's cost grows "
                        "faster than linearly)",
                    )
                ]
            ),
            label="dead",
        )


def test_a_missing_text_names_the_field_and_what_it_found():
    with TestPipeline() as p:
        _, dead = p | beam.Create([{**COORDS, "body": 1.5}]) | ScoreSentiment("body")
        assert_that(
            dead | beam.Map(lambda d: (d.error_type, d.message, d.stage)),
            equal_to([("MissingField", "field 'body' is float, expected str", "sentiment")]),
        )


def test_scored_and_dead_letter_counters():
    rows = [{**COORDS, "text": "good"}, {**COORDS, "text": "bad"}, {**COORDS, "text": None}]
    assert _sentiment_run(rows) == {"scored": 2, "dead_letters": 1}


def test_score_sentiment_shows_its_settings():
    assert ScoreSentiment("body", max_chars=7).display_data() == {"field": "body", "max_chars": 7}


def test_max_chars_of_one_is_accepted():
    assert ScoreSentiment(max_chars=1).display_data()["max_chars"] == 1


def test_score_sentiment_defaults():
    assert ScoreSentiment().display_data() == {"field": "text", "max_chars": 2000}
    assert ScoreSentiment()._threshold == 0.05


class _BrokenAnalyzer:
    """Stands in for a VADER analyzer that fails on a text (a poison record)."""

    def polarity_scores(self, text):
        raise ValueError(f"cannot score {text!r}")


def test_a_text_the_analyzer_fails_on_every_time_is_a_poison_dead_letter():
    from apache_beam.pvalue import TaggedOutput

    from transforms.deadletter import DEAD_LETTER_TAG
    from transforms.featurize.sentiment import _ScoreSentimentDoFn

    dofn = _ScoreSentimentDoFn("text", 100, 0.05)
    dofn._analyzer = _BrokenAnalyzer()
    (out,) = dofn.process({**COORDS, "text": "boom"})
    assert isinstance(out, TaggedOutput) and out.tag == DEAD_LETTER_TAG
    letter = out.value
    assert (letter.stage, letter.error_type) == ("sentiment", "PoisonRecord")
    assert letter.message == "failed 3 attempts; last: ValueError: cannot score 'boom'"
    assert letter.record.position == "5"
