"""README claim: letters that fail again in a ``dlq replay`` go to ``DLQ_replays/<id>``.

"Letters that fail again go to a table of their own (`DLQ_replays/<id>`). Each replayed
letter is marked with `replay_id`, `replayed_at_ms` and `replay_outcome` (`written` or
`failed again: <reason>`)."
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from beam_pipelines import sentiment
from beam_pipelines.feeds.tweets import generate_tweets
from runners.cli.main import main as dataplane
from tests.helpers import read_table

pytestmark = pytest.mark.integration

_PACKAGED_TWEET = Path(__file__).resolve().parents[2] / "schemas" / "tweet" / "1.json"


def _strict_registry(root: Path) -> Path:
    """The packaged tweet schema, but only ``lang: en``: a schema bug to fix by replaying."""
    schema = json.loads(_PACKAGED_TWEET.read_text())
    schema["properties"]["lang"] = {"enum": ["en"]}
    (root / "tweet").mkdir(parents=True)
    (root / "tweet" / "1.json").write_text(json.dumps(schema))
    return root


def _tweets_file(path: Path) -> tuple[set[str], int]:
    """Tweets (some not ``en``) and three lines that are not JSON; returns the non-en ids."""
    tweets = [json.loads(m.value) for m in generate_tweets(60, bad_ratio=0, seed=5)]
    lines = [json.dumps(t) for t in tweets] + ["{not json", "[1, ", "nope"]
    path.write_text("\n".join(lines) + "\n")
    return {t["id"] for t in tweets if t.get("lang") != "en"}, len(tweets)


def test_letters_failing_again_land_in_dlq_replays_id(tmp_path: Path) -> None:
    source = tmp_path / "tweets.jsonl"
    not_en, count = _tweets_file(source)
    assert 0 < len(not_en) < count
    lake = tmp_path / "lake"
    strict = _strict_registry(tmp_path / "strict")
    sentiment.run(
        [
            f"--source=file://{source}",
            f"--output={lake}/out",
            f"--dlq={lake}/dlq",
            f"--registry={strict}",
            "--bounded",
            "--runner=direct",
        ]
    )
    reasons = [r["error_type"] for r in read_table(f"{lake}/dlq").to_pylist()]
    assert sorted(reasons) == sorted(["SchemaViolation"] * len(not_en) + ["InvalidJson"] * 3)

    # The fix: the packaged schema takes every language. The broken lines fail again.
    flags = ["--", f"--output={lake}/out", "--runner=direct"]
    assert dataplane(["dlq", "replay", "sentiment", "--from", f"{lake}/dlq", *flags]) == 0
    assert {r["id"] for r in read_table(f"{lake}/out").to_pylist()} >= not_en
    marked = read_table(f"{lake}/dlq").to_pylist()
    (replay_id,) = {r["replay_id"] for r in marked}
    failures = lake / "dlq_replays" / replay_id
    assert [p.name for p in (lake / "dlq_replays").iterdir()] == [replay_id]
    again = read_table(str(failures)).to_pylist()
    broken = {r["_record_id"] for r in marked if r["error_type"] == "InvalidJson"}
    assert {r["_record_id"] for r in again} == broken
    assert {r["error_type"] for r in again} == {"InvalidJson"}
    assert sorted(r["value"] for r in again) == sorted([b"nope", b"[1, ", b"{not json"])
    outcome = {r["_record_id"]: r["replay_outcome"] for r in marked}
    assert {outcome[i] for i in broken} == {"failed again: InvalidJson"}
    assert {v for k, v in outcome.items() if k not in broken} == {"written"}
