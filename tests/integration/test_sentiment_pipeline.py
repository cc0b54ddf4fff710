"""The sentiment pipeline end to end against the real broker and local Delta tables."""

import json
from collections import Counter
from pathlib import Path

import pytest
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from beam_pipelines import sentiment
from beam_pipelines.feeds.kafka import produce as produce_generated
from beam_pipelines.feeds.tweets import BAD_KINDS, FRAMING_BAD_KINDS, generate_tweets
from schemas.registry import LocalFileRegistry
from tests.helpers import produce, read_table

pytestmark = pytest.mark.integration


def _run(bootstrap, topic, lake, *extra):
    return sentiment.run(
        [
            f"--source=kafka://{bootstrap}/{topic}",
            f"--output={lake}/out",
            f"--dlq={lake}/dlq",
            "--bounded",
            "--runner=direct",
            *extra,
        ]
    )


def test_rerun_resumes_after_the_committed_offsets_and_adds_nothing(
    kafka_bootstrap, new_topic, tmp_path
):
    topic = new_topic(partitions=3)
    kinds = produce_generated(kafka_bootstrap, topic, generate_tweets(1500, bad_ratio=0.1))
    first = _run(kafka_bootstrap, topic, tmp_path, "--batch_size=400")
    out, dlq = read_table(f"{tmp_path}/out"), read_table(f"{tmp_path}/dlq")
    assert out.num_rows == kinds["tweet"] and dlq.num_rows == 150
    # The summary against what was produced and what the tables hold.
    assert first.records_in == sum(kinds.values()) == 1500
    assert (first.valid, first.dead_letters) == (out.num_rows, dlq.num_rows)
    assert first.rows_written == out.num_rows + dlq.num_rows
    assert first.labels == dict(Counter(out["sentiment_label"].to_pylist()))
    assert first.dead_letters_by_reason == dict(Counter(dlq["error_type"].to_pylist()))
    versions = _versions(tmp_path)
    assert first.commits == versions >= 2  # one table version per commit, both tables
    # Every partition reports its lag; a bounded run ends caught up.
    assert first.source_lag == {f"kafka {topic}[{p}] records": 0 for p in range(3)}

    resumed = _run(kafka_bootstrap, topic, tmp_path, "--batch_size=400")
    assert resumed.records_in == 0  # every partition resumes after its committed frontier

    replayed = _run(kafka_bootstrap, topic, tmp_path, "--batch_size=400", "--no_resume")
    assert replayed.records_in == 1500
    assert replayed.rows_written == 0 and replayed.rows_already_committed == 1500
    assert replayed.commits == 0 and _versions(tmp_path) == versions  # no new table version
    out2, dlq2 = read_table(f"{tmp_path}/out"), read_table(f"{tmp_path}/dlq")
    assert (out2.num_rows, dlq2.num_rows) == (out.num_rows, dlq.num_rows)
    ids = out2["_record_id"].to_pylist() + dlq2["_record_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 1500


def _versions(lake):
    """Table versions of the output and dead-letter tables together (one per commit)."""
    return sum(len(list(Path(lake, t, "_delta_log").glob("*.json"))) for t in ("out", "dlq"))


def test_lag_gauges_show_the_backlog_left_by_max_records(kafka_bootstrap, new_topic, tmp_path):
    topic = new_topic(partitions=1)
    produce_generated(kafka_bootstrap, topic, generate_tweets(500, bad_ratio=0.0))
    summary = _run(kafka_bootstrap, topic, tmp_path, "--max_records=200")
    assert summary.records_in == 200
    assert summary.source_lag == {f"kafka {topic}[0] records": 300}


def test_bad_inputs_land_in_the_dead_letter_table_with_reason_and_coordinates(
    kafka_bootstrap, new_topic, tmp_path
):
    topic = new_topic(partitions=2)
    messages = list(generate_tweets(400, bad_ratio=0.25, seed=3))
    produce(
        kafka_bootstrap, topic, ((i % 2, m.value, m.timestamp_ms) for i, m in enumerate(messages))
    )
    summary = _run(kafka_bootstrap, topic, tmp_path)
    dlq = read_table(f"{tmp_path}/dlq").to_pylist()
    by_coords = {(d["_partition"], int(d["_position"])): d for d in dlq}
    bad = [(i, m) for i, m in enumerate(messages) if m.kind != "tweet"]
    assert len(dlq) == len(bad) and {m.kind for _, m in bad} == set(BAD_KINDS)
    for i, message in bad:
        letter = by_coords[(str(i % 2), i // 2)]
        assert letter["error_type"] == BAD_KINDS[message.kind], message.kind
        assert letter["value"] == message.value  # raw bytes kept, None for a tombstone
        assert letter["_stream"] == topic and letter["message"]
    assert summary.records_in == 400 == summary.valid + summary.dead_letters
    assert read_table(f"{tmp_path}/out").num_rows == summary.valid


def test_confluent_framed_tweets_through_a_served_registry_match_plain_json_runs(
    kafka_bootstrap, new_topic, registry_url, tmp_path
):
    registry = LocalFileRegistry()
    framed = list(
        generate_tweets(
            600,
            bad_ratio=0.1,
            seed=5,
            schema=registry.latest("tweet"),
            other=registry.latest("vehicle_telemetry"),
        )
    )
    plain = list(generate_tweets(600, bad_ratio=0.1, seed=5))
    framed_topic, plain_topic = new_topic(partitions=1), new_topic(partitions=1)
    produce(kafka_bootstrap, framed_topic, ((0, m.value, m.timestamp_ms) for m in framed))
    produce(kafka_bootstrap, plain_topic, ((0, m.value, m.timestamp_ms) for m in plain))

    summary = _run(kafka_bootstrap, framed_topic, tmp_path / "framed", f"--registry={registry_url}")
    _run(kafka_bootstrap, plain_topic, tmp_path / "plain")

    reasons = {**BAD_KINDS, **FRAMING_BAD_KINDS}
    dlq = {int(d["_position"]): d for d in read_table(f"{tmp_path}/framed/dlq").to_pylist()}
    bad = {n: m for n, m in enumerate(framed) if m.kind != "tweet"}
    assert {m.kind for m in bad.values()} == set(reasons)
    assert {n: dlq[n]["error_type"] for n in bad} == {n: reasons[m.kind] for n, m in bad.items()}
    assert summary.records_in == 600 == summary.valid + summary.dead_letters

    def content(table):
        rows = read_table(table).drop_columns(["_record_id", "_stream"]).to_pylist()
        return sorted(rows, key=lambda r: int(r["_position"]))

    framed_rows, plain_rows = content(f"{tmp_path}/framed/out"), content(f"{tmp_path}/plain/out")
    good_positions = {n for n, m in enumerate(framed) if m.kind == "tweet"}
    assert [int(r["_position"]) for r in framed_rows] == sorted(good_positions)
    plain_by_position = {int(r["_position"]): r for r in plain_rows}
    assert framed_rows == [plain_by_position[int(r["_position"])] for r in framed_rows]


@pytest.mark.slow
def test_ground_truth_corpora_score_exactly_like_vader(
    kafka_bootstrap, new_topic, tmp_path, ground_truth_dir
):
    texts = []
    for path in sorted(ground_truth_dir.glob("*_GroundTruth.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(line.split("\t", 2)[2])
    topic = new_topic(partitions=3)
    payloads = [
        json.dumps(
            {
                "id": str(i),
                "text": t,
                "created_at": "2026-11-01T00:00:00.000Z",
                "user": {"id": "u", "handle": "h"},
            },
            ensure_ascii=False,
        ).encode()
        for i, t in enumerate(texts)
    ]
    produce(kafka_bootstrap, topic, ((i % 3, v, 1_700_000_000_000) for i, v in enumerate(payloads)))
    summary = _run(kafka_bootstrap, topic, tmp_path)
    assert summary.dead_letters == 0
    table = read_table(f"{tmp_path}/out").select(["id", "text", "sentiment_compound"]).to_pylist()
    assert len(table) == len(texts)
    analyzer = SentimentIntensityAnalyzer()
    mismatches = Counter()
    for row in table:
        original = texts[int(row["id"])]
        assert row["text"] == original  # byte-exact round trip, UTF-8 included
        if row["sentiment_compound"] != analyzer.polarity_scores(original)["compound"]:
            mismatches["compound"] += 1
    assert mismatches == Counter()
