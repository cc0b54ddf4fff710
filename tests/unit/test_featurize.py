import time

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from transforms.errors import ConfigError
from transforms.featurize import CleanText, ScoreSentiment
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
