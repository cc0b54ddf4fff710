"""Synthetic tweets: mixed sentiment, emoji, URLs, mentions, hashtags, non-ASCII text,
and a share of malformed records of several kinds (for dead-letter paths)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

__all__ = ["BAD_KINDS", "GeneratedMessage", "generate_tweets", "tweet_payload"]

_OPENERS = [
    "Just tried",
    "Honestly,",
    "Can't believe",
    "So",
    "Day 3 with",
    "Update on",
    "Thoughts on",
    "Wow,",
    "Ugh,",
    "Finally got",
    "Not sure about",
]
_SUBJECTS = [
    "the new phone",
    "this café",
    "the train service",
    "@acme support",
    "the update",
    "my order",
    "the concert",
    "this book",
    "le nouveau menu",
    "la película",
    "the weather",
    "東京の新しい店",
    "the hotel",
    "Müller's bakery",
]
_VERDICTS = {
    "positive": [
        "is amazing!",
        "made my day :)",
        "is absolutely wonderful",
        "rocks 🎉",
        "was GREAT, highly recommend",
        "is so good 😍",
        "exceeded expectations",
    ],
    "negative": [
        "is terrible.",
        "ruined my morning :(",
        "is the worst, never again",
        "was awful 😡",
        "is a total disaster!!!",
        "broke after one day",
        "sucks",
    ],
    "neutral": [
        "arrived today",
        "is on the table",
        "opens at 9",
        "has a new logo",
        "is available in blue",
        "was mentioned in the news",
    ],
    "mixed": [
        "is good but the price is not great",
        "was fun, though kinda slow",
        "looks nice but feels cheap",
    ],
}
_TAGS = ["#tech", "#food", "#travel", "#music", "#fail", "#win", "#MondayMotivation", "#café"]
_LANGS = ["en", "en", "en", "fr", "es", "ja", "de"]

# Malformed kinds and the dead-letter reason each must produce.
BAD_KINDS = {
    "invalid_json": "InvalidJson",
    "wrong_types": "SchemaViolation",
    "missing_field": "SchemaViolation",
    "not_utf8": "NotUtf8",
    "empty_value": "EmptyValue",
    "null_value": "NullValue",
    "oversize_text": "SchemaViolation",
    "not_an_object": "SchemaViolation",
}


@dataclass(frozen=True)
class GeneratedMessage:
    """One message to produce; ``kind`` is ``"tweet"`` or a key of BAD_KINDS."""

    key: bytes
    value: bytes | None
    timestamp_ms: int
    kind: str


def _text(rng: random.Random) -> str:
    mood = rng.choice(list(_VERDICTS))
    parts = [rng.choice(_OPENERS), rng.choice(_SUBJECTS), rng.choice(_VERDICTS[mood])]
    if rng.random() < 0.3:
        parts.insert(0, f"@user{rng.randrange(1000)}")
    if rng.random() < 0.4:
        parts.append(rng.choice(_TAGS))
    if rng.random() < 0.25:
        parts.append(f"https://t.co/{rng.randrange(16**8):08x}")
    return " ".join(parts)


def tweet_payload(rng: random.Random, number: int, created: datetime) -> dict:
    """One valid tweet as a dict."""
    text = _text(rng)
    return {
        "id": f"{1_800_000_000_000 + number}",
        "text": text,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "lang": rng.choice(_LANGS),
        "user": {
            "id": str(rng.randrange(10**6)),
            "handle": f"user{rng.randrange(10**5)}",
            "followers": rng.randrange(10**5),
        },
        "hashtags": [w[1:] for w in text.split() if w.startswith("#")],
        "mentions": [w[1:] for w in text.split() if w.startswith("@")],
        "urls": [w for w in text.split() if w.startswith("https://")],
        "retweet_count": rng.randrange(500),
        "like_count": rng.randrange(5000),
    }


def _bad_value(kind: str, payload: dict) -> bytes | None:
    if kind == "invalid_json":
        return json.dumps(payload).encode()[:-7]
    if kind == "wrong_types":
        return json.dumps({**payload, "text": 12345}).encode()
    if kind == "missing_field":
        return json.dumps({k: v for k, v in payload.items() if k != "user"}).encode()
    if kind == "not_utf8":
        return json.dumps(payload).encode().replace(b'"text": "', b'"text": "\xff\xfe', 1)
    if kind == "empty_value":
        return b""
    if kind == "null_value":
        return None
    if kind == "oversize_text":
        return json.dumps({**payload, "text": "so good but not great " * 500}).encode()
    if kind == "not_an_object":
        return json.dumps([payload["text"]]).encode()
    raise ValueError(f"unknown bad kind {kind!r}")


def generate_tweets(
    count: int, *, bad_ratio: float = 0.05, seed: int = 7, start: datetime | None = None
) -> Iterator[GeneratedMessage]:
    """``count`` messages; about ``bad_ratio`` of them malformed (kinds in turn).

    >>> msgs = list(generate_tweets(100, bad_ratio=0.1, seed=1))
    >>> len(msgs), sum(m.kind != "tweet" for m in msgs)
    (100, 10)
    """
    if not 0.0 <= bad_ratio <= 1.0:
        raise ValueError(f"bad_ratio must be within [0, 1], got {bad_ratio}")
    rng = random.Random(seed)
    clock = start or datetime(2026, 11, 1, tzinfo=timezone.utc)
    kinds = list(BAD_KINDS)
    bad_every = round(1 / bad_ratio) if bad_ratio > 0 else 0
    for number in range(count):
        clock += timedelta(milliseconds=rng.randrange(1, 200))
        payload = tweet_payload(rng, number, clock)
        key = payload["user"]["id"].encode()
        ts = int(clock.timestamp() * 1000)
        if bad_every and number % bad_every == bad_every - 1:
            kind = kinds[(number // bad_every) % len(kinds)]
            yield GeneratedMessage(key, _bad_value(kind, payload), ts, kind)
        else:
            yield GeneratedMessage(
                key, json.dumps(payload, ensure_ascii=False).encode(), ts, "tweet"
            )
