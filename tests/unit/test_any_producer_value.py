"""Nothing a producer can put in a tweet stops the sentiment pipeline.

Each generated message goes through the pipeline's steps in this process
(decode, clean, score), and what comes out is put through what the runner and
the sinks do with it: Beam's coders and the Arrow conversion of the Delta sinks.
A value Python accepts but a coder or Arrow refuses (a lone surrogate escape, an
integer beyond 64 bits) used to stop the partition for good; here every message
must end as a row the output table can hold or as a dead letter the dead-letter
table can hold, with the key, headers and bytes as produced.
"""

from __future__ import annotations

import json
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.pvalue import TaggedOutput
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beam_pipelines.sentiment import SENTIMENT_SCHEMA
from schemas.codecs import DecodeError, JsonCodec
from schemas.registry import LocalFileRegistry
from transforms.deadletter import DEAD_LETTER_SCHEMA, DeadLetter, dead_letter_row
from transforms.featurize.sentiment import _ScoreSentimentDoFn
from transforms.featurize.text import _CleanTextDoFn
from transforms.record import Record, make_record
from transforms.sinks.delta import rows_to_arrow
from transforms.validate import _DecodeDoFn

REGISTRY = LocalFileRegistry()
TWEET = REGISTRY.latest("tweet")
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Every Unicode category, surrogates (Cs), unassigned code points and non-characters
# (Cn) and private use (Co) included; Hypothesis leaves surrogates out by default.
ANY_CHAR = st.characters(
    codec=None, categories=["Cs", "Cn", "Co", "Cc", "Cf", "Zs", "L", "M", "N", "P", "S"]
)
any_text = st.text(ANY_CHAR, max_size=12)
any_integer = st.integers() | st.integers(min_value=-(2**70), max_value=2**70)
tweets = st.fixed_dictionaries(
    {
        "id": st.text(ANY_CHAR, min_size=1, max_size=8),
        "text": st.text(ANY_CHAR, min_size=1, max_size=40),
        "created_at": st.text(ANY_CHAR, min_size=20, max_size=24),
        "user": st.tuples(
            st.fixed_dictionaries(
                {"id": st.text(ANY_CHAR, min_size=1, max_size=8), "handle": any_text.filter(bool)},
                optional={"followers": any_integer},
            ),
            st.dictionaries(any_text, any_text, max_size=2),  # extra properties, any names
        ).map(lambda parts: {**parts[1], **parts[0]}),
    },
    optional={
        "lang": st.text(ANY_CHAR, max_size=4),
        "hashtags": st.lists(any_text, max_size=3),
        "urls": st.lists(any_text, max_size=3),
        "retweet_count": any_integer,
        "like_count": st.floats(allow_nan=False) | any_integer,
    },
)
# How a producer may have written it: ASCII-only JSON spells a lone surrogate as a
# \ud800 escape; a careless UTF-8 encoder writes its bytes (not valid UTF-8).
encoders = st.sampled_from(
    [
        lambda doc: json.dumps(doc, ensure_ascii=True).encode("ascii"),
        lambda doc: json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass"),
    ]
)
keys = st.none() | st.binary(max_size=8)
headers = st.lists(st.tuples(st.text(max_size=6), st.none() | st.binary(max_size=6)), max_size=3)


def _steps(max_chars: int) -> list[Any]:
    decode = _DecodeDoFn(REGISTRY, TWEET, "auto")
    decode.setup()
    score = _ScoreSentimentDoFn("text", max_chars, 0.05)
    score.setup()
    return [decode, _CleanTextDoFn("text", "text_clean", {}), score]


STEPS, STRICT_STEPS = _steps(2000), _steps(10)


def _through(steps: list[Any], record: Record) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
    rows, letters = [], []
    pending: list[Any] = [record]
    for step in steps:
        outputs = [out for element in pending for out in step.process(element)]
        letters += [out.value for out in outputs if isinstance(out, TaggedOutput)]
        pending = [out for out in outputs if not isinstance(out, TaggedOutput)]
    rows += pending
    return rows, letters


def _assert_lands(record: Record, steps: list[Any]) -> tuple[list[Any], list[DeadLetter]]:
    rows, letters = _through(steps, record)
    assert len(rows) + len(letters) == 1
    row_coder = beam.coders.registry.get_coder(Any)
    letter_coder = beam.coders.registry.get_coder(DeadLetter)
    for row in rows:
        assert row_coder.decode(row_coder.encode(row)) == row
        assert rows_to_arrow([row], SENTIMENT_SCHEMA).num_rows == 1
    for letter in letters:
        assert letter_coder.decode(letter_coder.encode(letter)) == letter
        assert rows_to_arrow([dead_letter_row(letter)], DEAD_LETTER_SCHEMA).num_rows == 1
        # The record as produced, whatever step rejected it.
        assert (letter.record.key, letter.record.value) == (record.key, record.value)
        assert letter.record.headers == record.headers
    return rows, letters


def _record(value: bytes, key: bytes | None, header_list: list[Any]) -> Record:
    return make_record(
        source="kafka",
        stream="tweets",
        partition=0,
        position=7,
        value=value,
        event_time_ms=0,
        key=key,
        headers=header_list,
    )


@FUZZ
@given(tweets, encoders, keys, headers)
def test_any_tweet_ends_as_a_writable_row_or_dead_letter(tweet, encode, key, header_list):
    _assert_lands(_record(encode(tweet), key, header_list), STEPS)


@FUZZ
@given(tweets, encoders, keys, headers)
def test_dead_letters_of_every_step_keep_the_produced_record(tweet, encode, key, header_list):
    # Scoring stops at 10 characters here, so rows also die after decoding.
    _assert_lands(_record(encode(tweet), key, header_list), STRICT_STEPS)


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        (b'{"text": "x \\ud800"}', "at text"),
        (b'{"a": ["ok", "\\uDFFF"]}', "at a[1]"),
        (b'{"a": {"\\udc00": 1}}', "(the name)"),
    ],
)
def test_a_lone_surrogate_escape_is_unrepresentable(payload: bytes, where: str) -> None:
    with pytest.raises(DecodeError) as caught:
        JsonCodec({"type": "object"}).decode(payload)
    assert caught.value.reason == "Unrepresentable"
    assert where in str(caught.value)
    str(caught.value).encode("utf-8")  # the message itself is writable


@pytest.mark.parametrize(
    "payload", [b'{"n": 9223372036854775808}', b'{"n": -9223372036854775809}', b'{"x": 1e400}']
)
def test_numbers_beyond_64_bits_are_unrepresentable(payload: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        JsonCodec({"type": "object"}).decode(payload)
    assert caught.value.reason == "Unrepresentable"


def test_pairs_and_64_bit_extremes_still_decode() -> None:
    value = b'{"e": "\\ud83d\\ude00", "lo": -9223372036854775808, "hi": 9223372036854775807}'
    decoded = JsonCodec({"type": "object"}).decode(value)
    assert decoded == {"e": "\U0001f600", "lo": -(2**63), "hi": 2**63 - 1}
    assert pa.Table.from_pylist([decoded]).num_rows == 1
