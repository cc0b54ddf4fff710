"""ScoreSentiment: VADER scores with a bounded cost per record."""

from __future__ import annotations

import functools
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput

from schemas.errors import ConfigError
from transforms.batches import RowWise, same_face
from transforms.deadletter import DEAD_LETTER_TAG, row_dead_letter
from transforms.poison import attempt, poison_dead_letter

__all__ = ["SENTIMENT_FIELDS", "ScoreSentiment", "sentiment_label"]

SENTIMENT_FIELDS = ("sentiment_neg", "sentiment_neu", "sentiment_pos", "sentiment_compound")
_STAGE = "sentiment"


def sentiment_label(compound: float, threshold: float = 0.05) -> str:
    """VADER's usual reading of a compound score.

    >>> [sentiment_label(x) for x in (0.5, 0.0, -0.06)]
    ['positive', 'neutral', 'negative']
    """
    if compound >= threshold:
        return "positive"
    if compound <= -threshold:
        return "negative"
    return "neutral"


@functools.cache
def _shared_analyzer() -> Any:
    """One VADER analyzer per process: loading its lexicons takes tens of milliseconds,
    and a runner that sets up a DoFn for every bundle (Beam's direct runners) would
    load them for every bundle. Scoring only reads the lexicons."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


class _ScoreSentimentDoFn(RowWise):
    def __init__(self, field: str, max_chars: int, threshold: float) -> None:
        self._field, self._max_chars, self._threshold = field, max_chars, threshold
        self._analyzer: Any = None
        self._scored = Metrics.counter("dataplane.sentiment", "scored")
        self._rejected = Metrics.counter("dataplane.sentiment", "dead_letters")

    def setup(self) -> None:
        self._analyzer = _shared_analyzer()

    def passed(self, count: int) -> None:
        self._scored.inc(count)

    def one(self, row: dict[str, Any]) -> Any:
        """The row with its scores, or its dead letter (a ``TaggedOutput``)."""
        text = row.get(self._field)
        problem = self._problem_with(text)
        if problem is not None:
            self._rejected.inc()
            return TaggedOutput(DEAD_LETTER_TAG, row_dead_letter(row, stage=_STAGE, **problem))
        outcome = attempt(lambda: self._analyzer.polarity_scores(text), stage=_STAGE)
        if outcome.error is not None:
            self._rejected.inc()
            return TaggedOutput(
                DEAD_LETTER_TAG, poison_dead_letter(row, stage=_STAGE, outcome=outcome)
            )
        scores = outcome.value
        assert scores is not None
        return {
            **row,
            "sentiment_neg": scores["neg"],
            "sentiment_neu": scores["neu"],
            "sentiment_pos": scores["pos"],
            "sentiment_compound": scores["compound"],
            "sentiment_label": sentiment_label(scores["compound"], self._threshold),
        }

    def _problem_with(self, text: Any) -> dict[str, str] | None:
        if not isinstance(text, str):
            kind = type(text).__name__
            return {
                "error_type": "MissingField",
                "message": f"field {self._field!r} is {kind}, expected str",
            }
        if len(text) > self._max_chars:
            return {
                "error_type": "TextTooLong",
                "message": f"text has {len(text)} characters, more than max_chars="
                f"{self._max_chars} (VADER's cost grows faster than linearly)",
            }
        return None


class ScoreSentiment(beam.PTransform):
    """Adds VADER sentiment scores to rows: the same numbers vaderSentiment gives.

    Adds ``sentiment_neg``, ``sentiment_neu``, ``sentiment_pos``, ``sentiment_compound``
    and ``sentiment_label`` (``positive`` / ``neutral`` / ``negative``). VADER's cost
    grows faster than linearly with some inputs (a text of 8,000 words takes seconds),
    so texts longer than ``max_chars`` become dead letters instead of stalling a worker.

    Args:
        field: the text field to score (score the raw text: VADER reads case,
            punctuation and emoji).
        max_chars: longest text scored; longer texts are dead letters (``TextTooLong``).
        label_threshold: ``|compound|`` at or above which a text is positive/negative.

    Returns:
        ``(rows, dead_letters)``.

    Raises:
        ConfigError: when ``max_chars`` is not positive or the threshold is outside [0, 1].

    Example:
        >>> import apache_beam as beam
        >>> rows = [{"text": "I love this phone :)"}, {"text": "Worst. Service. Ever."}]
        >>> with beam.Pipeline() as p:
        ...     scored, dead = p | beam.Create(rows) | ScoreSentiment()
        ...     _ = scored | beam.Map(lambda r: print(r["sentiment_label"], r["text"]))
        positive I love this phone :)
        negative Worst. Service. Ever.
    """

    def __init__(
        self, field: str = "text", *, max_chars: int = 2000, label_threshold: float = 0.05
    ) -> None:
        super().__init__()
        if max_chars <= 0:
            raise ConfigError(
                "max_chars", f"must be a positive number of characters, got {max_chars}"
            )
        if not 0.0 <= label_threshold <= 1.0:
            raise ConfigError("label_threshold", f"must be within [0, 1], got {label_threshold}")
        self._field, self._max_chars, self._threshold = field, max_chars, label_threshold

    def expand(self, rows: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        dofn = _ScoreSentimentDoFn(self._field, self._max_chars, self._threshold)
        score = same_face(beam.ParDo(dofn), rows)
        return rows | "ScoreSentiment" >> score.with_outputs(DEAD_LETTER_TAG, main="rows")

    def display_data(self) -> dict[str, Any]:
        return {"field": self._field, "max_chars": self._max_chars}
