"""Synthetic tweets: mixed sentiment, emoji, URLs, mentions, hashtags, non-ASCII text,
and a share of malformed records of several kinds (for dead-letter paths)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from schemas.base import RegisteredSchema
from schemas.codecs import encode_framed
from schemas.wire import frame

__all__ = [
    "BAD_KINDS",
    "FRAMING_BAD_KINDS",
    "GeneratedMessage",
    "framing_bad_value",
    "generate_tweets",
    "tweet_payload",
]

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

# Further kinds when values are Confluent-framed, shared with the telemetry generator.
FRAMING_BAD_KINDS = {
    "bad_magic_byte": "BadMagicByte",
    "truncated_header": "TruncatedPayload",
    "unknown_schema_id": "UnknownSchemaId",
    "subject_mismatch": "SubjectMismatch",
}
# A schema id no registry of ours assigns (local ids are crc32-derived, never this).
UNUSED_SCHEMA_ID = 0x7FFFFFFE


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


def framing_bad_value(kind: str, good: bytes, other: RegisteredSchema) -> bytes:
    """A broken variant of the framed value ``good``; ``other`` is another subject's schema."""
    if kind == "bad_magic_byte":
        return b"\x01" + good[1:]
    if kind == "truncated_header":
        return good[:3]
    if kind == "unknown_schema_id":
        return frame(UNUSED_SCHEMA_ID, good[5:])
    if kind == "subject_mismatch":
        return frame(other.schema_id, good[5:])
    raise ValueError(f"unknown framing kind {kind!r}")


def bad_every(bad_ratio: float) -> int:
    """Every how many messages one is malformed (0: none).

    >>> bad_every(0.05), bad_every(0.0)
    (20, 0)
    """
    if not 0.0 <= bad_ratio <= 1.0:
        raise ValueError(f"bad_ratio must be within [0, 1], got {bad_ratio}")
    return round(1 / bad_ratio) if bad_ratio > 0 else 0


def generate_tweets(
    count: int,
    *,
    bad_ratio: float = 0.05,
    seed: int = 7,
    start: datetime | None = None,
    schema: RegisteredSchema | None = None,
    other: RegisteredSchema | None = None,
) -> Iterator[GeneratedMessage]:
    """``count`` messages; about ``bad_ratio`` of them malformed (kinds in turn).

    Args:
        schema: when given, values are framed the Confluent way with this (JSON Schema)
            subject version, and the framing kinds join the malformed ones.
        other: another subject's schema, for ``subject_mismatch`` messages (framed only).

    >>> msgs = list(generate_tweets(100, bad_ratio=0.1, seed=1))
    >>> len(msgs), sum(m.kind != "tweet" for m in msgs)
    (100, 10)
    """
    every = bad_every(bad_ratio)
    rng = random.Random(seed)
    clock = start or datetime(2026, 11, 1, tzinfo=timezone.utc)
    kinds = list(BAD_KINDS) + (list(FRAMING_BAD_KINDS) if schema is not None else [])
    for number in range(count):
        clock += timedelta(milliseconds=rng.randrange(1, 200))
        payload = tweet_payload(rng, number, clock)
        key = payload["user"]["id"].encode()
        ts = int(clock.timestamp() * 1000)
        if every and number % every == every - 1:
            kind = kinds[(number // every) % len(kinds)]
            yield GeneratedMessage(key, _bad(kind, payload, schema, other), ts, kind)
        elif schema is not None:
            yield GeneratedMessage(key, encode_framed(schema, payload), ts, "tweet")
        else:
            yield GeneratedMessage(
                key, json.dumps(payload, ensure_ascii=False).encode(), ts, "tweet"
            )


def _bad(
    kind: str, payload: dict, schema: RegisteredSchema | None, other: RegisteredSchema | None
) -> bytes | None:
    if schema is None:
        return _bad_value(kind, payload)
    if kind in FRAMING_BAD_KINDS:
        if other is None:
            raise ValueError("framed generation needs another subject's schema (other=...)")
        return framing_bad_value(kind, encode_framed(schema, payload), other)
    value = _bad_value(kind, payload)
    return frame(schema.schema_id, value) if value else value
