"""CleanText: a normalised copy of a text field for search and modelling."""

from __future__ import annotations

import html
import re
import unicodedata
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from transforms.batches import RowWise, same_face
from transforms.deadletter import DEAD_LETTER_TAG, row_dead_letter
from transforms.poison import attempt, poison_dead_letter

__all__ = ["CleanText", "clean_text"]

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w+")
_SPACE = re.compile(r"\s+")


def clean_text(text: str, *, remove_urls: bool = True, remove_mentions: bool = False) -> str:
    """Normalises ``text``: HTML entities, Unicode NFKC, control characters, URLs, spaces.

    >>> clean_text("Great  deal &amp; fast\\u200b shipping https://t.co/x  @bob")
    'Great deal & fast shipping @bob'
    >>> clean_text("\\uff26\\uff35\\uff2c\\uff2c width", remove_mentions=True)
    'FULL width'
    """
    text = unicodedata.normalize("NFKC", html.unescape(text))
    if remove_urls:
        text = _URL.sub(" ", text)
    if remove_mentions:
        text = _MENTION.sub(" ", text)
    if not text.isprintable():  # printable text has no control, format or unassigned characters
        text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n")
    return _SPACE.sub(" ", text).strip()


class _CleanTextDoFn(RowWise):
    def __init__(self, field: str, output_field: str, options: dict[str, bool]) -> None:
        self._field, self._output_field, self._options = field, output_field, options

    def one(self, row: dict[str, Any]) -> Any:
        """The row with its cleaned text, or its dead letter (a ``TaggedOutput``)."""
        text = row.get(self._field)
        if not isinstance(text, str):
            return TaggedOutput(
                DEAD_LETTER_TAG,
                row_dead_letter(
                    row,
                    stage="clean_text",
                    error_type="MissingField",
                    message=f"field {self._field!r} is {type(text).__name__}, expected str",
                ),
            )
        outcome = attempt(lambda: clean_text(text, **self._options), stage="clean_text")
        if outcome.error is not None:
            letter = poison_dead_letter(row, stage="clean_text", outcome=outcome)
            return TaggedOutput(DEAD_LETTER_TAG, letter)
        return {**row, self._output_field: outcome.value}


class CleanText(beam.PTransform):
    """Adds a cleaned copy of a text field (the original field is left as it was).

    Args:
        field: the input text field.
        output_field: where the cleaned text goes.
        remove_urls: drop http(s):// and www. links.
        remove_mentions: drop @handles.

    Returns:
        ``(rows, dead_letters)``; rows whose field is missing or not text are dead letters.

    Example:
        >>> import apache_beam as beam
        >>> row = {"text": "so  good &amp; cheap http://x.io", "_record_id": "r"}
        >>> with beam.Pipeline() as p:
        ...     rows, dead = p | beam.Create([row]) | CleanText()
        ...     _ = rows | beam.Map(lambda r: print(r["clean_text"]))
        so good & cheap
    """

    def __init__(
        self,
        field: str = "text",
        *,
        output_field: str = "clean_text",
        remove_urls: bool = True,
        remove_mentions: bool = False,
    ) -> None:
        super().__init__()
        self._field, self._output_field = field, output_field
        self._options = {"remove_urls": remove_urls, "remove_mentions": remove_mentions}

    def expand(self, rows: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        dofn = _CleanTextDoFn(self._field, self._output_field, self._options)
        clean = same_face(beam.ParDo(dofn), rows)
        return rows | "CleanText" >> clean.with_outputs(DEAD_LETTER_TAG, main="rows")

    def display_data(self) -> dict[str, Any]:
        return {"field": self._field, "output_field": self._output_field, **self._options}
