"""The hand-written loops the pipelines are measured against: the same work, no Beam.

A user who wrote these would use our plain functions (``RecordDecoder``, ``clean_text``,
``make_record_id``, the physics bounds) as these do. Those live in packages that import
Beam, so a loop still pays Beam's import at start-up (about 0.9 s here).

The sentiment loop's output columns are written out here rather than imported from
``beam_pipelines.sentiment`` (which would load the pipeline's own imports into the loop);
``python -m bench`` checks they match ``SENTIMENT_SCHEMA`` before it measures.

Both loops freeze the heap of their imports out of the garbage collector's scans
before they start (``transforms.gc_tuning``), as the pipelines' launcher does, so
that a ratio compares the work and not that setting (the sentiment loop is about
10 % faster for it, the pipeline about 35 %).
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq
import pygeohash
from confluent_kafka import Consumer, KafkaError, TopicPartition
from deltalake import write_deltalake
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from schemas.codecs import DecodeError
from schemas.registry import LocalFileRegistry
from transforms.featurize.bounds import TELEMETRY_BOUNDS, bound_violation
from transforms.featurize.text import clean_text
from transforms.gc_tuning import freeze_heap_once
from transforms.record import make_record_id
from transforms.sinks.parquet import partition_of
from transforms.validate import RecordDecoder

__all__ = [
    "COMMIT_ROWS",
    "DEAD_LETTER_COLUMNS",
    "SENTIMENT_COLUMNS",
    "SENTIMENT_LOOP_SCHEMA",
    "LoopCounts",
    "sentiment_loop",
    "telemetry_loop",
]

COMMIT_ROWS = 10_000
MAX_TEXT_CHARS = 2000  # the pipeline's --max_text_chars default
_WINDOW_MS = 300_000

# beam_pipelines.sentiment.SENTIMENT_SCHEMA, field for field.
SENTIMENT_COLUMNS = pa.schema(
    [
        ("id", pa.string()),
        ("created_at", pa.string()),
        ("lang", pa.string()),
        ("user", pa.struct([("id", pa.string()), ("handle", pa.string())])),
        ("text", pa.string()),
        ("clean_text", pa.string()),
        ("hashtags", pa.list_(pa.string())),
        ("sentiment_neg", pa.float64()),
        ("sentiment_neu", pa.float64()),
        ("sentiment_pos", pa.float64()),
        ("sentiment_compound", pa.float64()),
        ("sentiment_label", pa.string()),
    ]
)
_COORDINATES = [("_record_id", pa.string()), ("_partition", pa.string()), ("_offset", pa.int64())]
SENTIMENT_LOOP_SCHEMA = pa.schema([*_COORDINATES, *SENTIMENT_COLUMNS])
DEAD_LETTER_COLUMNS = pa.schema(
    [
        *_COORDINATES,
        ("value", pa.binary()),
        ("stage", pa.string()),
        ("error_type", pa.string()),
        ("message", pa.string()),
    ]
)


class LoopCounts(dict[str, int]):
    """``read``, ``written`` and ``dead_letters`` of one loop run."""


def _label(compound: float) -> str:
    if compound >= 0.05:
        return "positive"
    if compound <= -0.05:
        return "negative"
    return "neutral"


def sentiment_loop(bootstrap: str, topic: str, partitions: int, lake: str) -> LoopCounts:
    """Kafka → decode + validate → clean_text → VADER → label → Delta, 10k rows per commit.

    Bad records (undecodable, too long) go to a dead-letter Delta table with their
    coordinates, also 10k rows per commit.
    """
    freeze_heap_once()  # as the pipeline's launcher does: like for like
    registry = LocalFileRegistry()
    decoder = RecordDecoder(registry, registry.latest("tweet"))
    analyzer = SentimentIntensityAnalyzer()
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-loop",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 20,
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    rows: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    counts = LoopCounts(read=0, written=0, dead_letters=0)
    done: set[int] = set()
    while len(done) < partitions:
        for message in consumer.consume(1000, timeout=1.0):
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    done.add(cast(int, message.partition()))
                continue
            counts["read"] += 1
            partition, offset = str(message.partition()), message.offset()
            coordinates = {
                "_record_id": make_record_id("kafka", topic, partition, str(offset)),
                "_partition": partition,
                "_offset": offset,
            }
            try:
                row = _score_one(decoder, analyzer, message.value())
            except _Rejected as rejected:
                dead.append({**coordinates, "value": message.value(), **rejected.fields})
            else:
                rows.append({**row, **coordinates})
            if len(rows) >= COMMIT_ROWS:
                counts["written"] += _append(f"{lake}/output", rows, SENTIMENT_LOOP_SCHEMA)
            if len(dead) >= COMMIT_ROWS:
                counts["dead_letters"] += _append(f"{lake}/dlq", dead, DEAD_LETTER_COLUMNS)
    counts["written"] += _append(f"{lake}/output", rows, SENTIMENT_LOOP_SCHEMA)
    counts["dead_letters"] += _append(f"{lake}/dlq", dead, DEAD_LETTER_COLUMNS)
    consumer.close()
    return counts


class _Rejected(Exception):
    def __init__(self, stage: str, error_type: str, message: str) -> None:
        super().__init__(message)
        self.fields = {"stage": stage, "error_type": error_type, "message": message}


def _score_one(decoder: RecordDecoder, analyzer: Any, value: bytes | None) -> dict[str, Any]:
    """The decoded row with its clean text and scores; raises _Rejected for a dead letter."""
    try:
        row = decoder.decode(value)
    except DecodeError as err:
        raise _Rejected("decode", err.reason, str(err)) from None
    text = row["text"]
    if len(text) > MAX_TEXT_CHARS:
        message = f"text has {len(text)} characters, more than {MAX_TEXT_CHARS}"
        raise _Rejected("sentiment", "TextTooLong", message)
    row["clean_text"] = clean_text(text)
    scores = analyzer.polarity_scores(text)
    row["sentiment_neg"] = scores["neg"]
    row["sentiment_neu"] = scores["neu"]
    row["sentiment_pos"] = scores["pos"]
    row["sentiment_compound"] = scores["compound"]
    row["sentiment_label"] = _label(scores["compound"])
    return row


def _append(table: str, rows: list[dict[str, Any]], schema: pa.Schema) -> int:
    """Appends ``rows`` to ``table`` in one commit and empties the list; returns the count."""
    if not rows:
        return 0
    write_deltalake(table, pa.Table.from_pylist(rows, schema=schema), mode="append")
    count = len(rows)
    rows.clear()
    return count


def telemetry_loop(path: str, lake: str) -> LoopCounts:
    """Parquet replay → decode (RecordDecoder) → physics → geohash → 5-minute aggregates.

    The same outputs as the pipeline: readings with their record id and coordinates
    into Parquet files partitioned by event hour (``dt=.../hour=..``), aggregates into
    Delta, bad readings into a dead-letter Delta table with reason and bytes; each
    written once at the end.
    """
    freeze_heap_once()  # as the pipeline's launcher does: like for like
    registry = LocalFileRegistry()
    decoder = RecordDecoder(registry, registry.latest("vehicle_telemetry"))
    values = pq.read_table(path, columns=["value"]).column("value").to_pylist()
    windows: dict[tuple[str, int], list[Any]] = defaultdict(lambda: [0, 0.0, math.inf, 0.0, 0.0])
    by_hour: dict[str, list[dict[str, Any]]] = defaultdict(list)
    dead: list[dict[str, Any]] = []
    written = 0
    for position, value in enumerate(values):
        record_id = make_record_id("file", path, "0", str(position))
        try:
            row = decoder.decode(value)
            problem = bound_violation(row, TELEMETRY_BOUNDS)
        except Exception as err:
            row, problem = {}, f"{type(err).__name__}: {err}"
        if problem is not None:
            dead.append(
                {
                    "_record_id": record_id,
                    "_position": str(position),
                    "error_type": "rejected",
                    "message": problem,
                    "value": value,
                }
            )
            continue
        row["geohash"] = pygeohash.encode(row["lat"], row["lon"], precision=6)
        ts_ms = int(row["ts"].timestamp() * 1000)
        row.update(_record_id=record_id, _position=str(position), _event_time_ms=ts_ms)
        acc = windows[(row["vehicle_id"], ts_ms - ts_ms % _WINDOW_MS)]
        acc[0] += 1
        acc[1] += row["speed_kph"]
        acc[2] = min(acc[2], row["speed_kph"])
        acc[3] = max(acc[3], row["speed_kph"])
        acc[4] += row["engine_temp_c"]
        by_hour[partition_of(ts_ms)].append(row)
        written += 1
    aggregates = [
        {
            "vehicle_id": v,
            "window_start": s,
            "count": a[0],
            "avg_speed_kph": a[1] / a[0],
            "min_speed_kph": a[2],
            "max_speed_kph": a[3],
            "avg_engine_temp_c": a[4] / a[0],
        }
        for (v, s), a in windows.items()
    ]
    write_deltalake(f"{lake}/hand_windows", pa.Table.from_pylist(aggregates))
    for hour, rows in by_hour.items():
        folder = Path(lake) / "hand_readings" / hour
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / "part-0.parquet")
    if dead:
        write_deltalake(f"{lake}/hand_dead_letters", pa.Table.from_pylist(dead))
    return LoopCounts(read=len(values), written=written, dead_letters=len(dead))
