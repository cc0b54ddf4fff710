"""Rows that do not fit the output table become dead letters, exactly once across a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from beam_pipelines import sentiment
from schemas.registry import PACKAGED_SCHEMAS
from tests.helpers import produce, read_table
from transforms.sinks import ResumeFrom, TableRef

pytestmark = pytest.mark.integration

_BAD_IDS = (5, 12)  # these tweets carry an integer id: the registry allows it, the table not


def _registry_allowing_integer_ids(root: Path) -> Path:
    schema = json.loads((PACKAGED_SCHEMAS / "tweet" / "1.json").read_text())
    schema["properties"]["id"] = {"type": ["string", "integer"]}
    (root / "tweet").mkdir(parents=True)
    (root / "tweet" / "1.json").write_text(json.dumps(schema))
    return root


def _tweet(n: int) -> bytes:
    tweet = {
        "id": n if n in _BAD_IDS else f"t{n}",
        "text": f"tweet number {n} is great",
        "created_at": "2026-11-23T06:00:00.000Z",
        "user": {"id": "u1", "handle": "someone"},
    }
    return json.dumps(tweet).encode()


def _flags(bootstrap: str, topic: str, lake: Path, registry: Path) -> list[str]:
    return [
        f"--source=kafka://{bootstrap}/{topic}?group=g-{topic}",
        f"--output={lake}/out",
        f"--dlq={lake}/dlq",
        f"--registry={registry}",
        "--bounded",
        "--runner=direct",
    ]


def _resume_from(lake: Path) -> ResumeFrom:
    tables = (TableRef(f"{lake}/out", "sentiment"), TableRef(f"{lake}/dlq", "sentiment-dlq"))
    return ResumeFrom.of(tables, None)


def _killed_run(flags: list[str], failpoint: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "beam_pipelines.sentiment", *flags]
    env = {**os.environ, "DATAPLANE_FAILPOINT": failpoint}
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def test_misfits_reach_the_dead_letter_table_once_after_a_crash_between_the_tables(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=1)
    produce(kafka_bootstrap, topic, [(0, _tweet(n), 1_000 + n) for n in range(20)])
    registry = _registry_allowing_integer_ids(tmp_path / "schemas")
    lake = tmp_path / "lake"

    flags = _flags(kafka_bootstrap, topic, lake, registry)

    # Killed once the output's first commit is in: its misfits never reach the dead-letter table.
    crashed = _killed_run(flags, failpoint="group_offsets@1")
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-2000:]
    assert read_table(f"{lake}/out").num_rows > 0 and not (lake / "dlq").exists()
    # The frontier stops before the first misfit, which no table holds yet.
    frontier = int(_resume_from(lake).frontiers("kafka", topic)["0"])
    assert frontier < _BAD_IDS[0]

    resumed = sentiment.run(flags)  # resumes after the frontier
    assert resumed.records_in == 19 - frontier == resumed.valid + resumed.dead_letters
    assert resumed.dead_letters_by_reason == {"SchemaMismatch": 2}

    out, dlq = read_table(f"{lake}/out"), read_table(f"{lake}/dlq")
    assert sorted(out["id"].to_pylist()) == sorted(f"t{n}" for n in range(20) if n not in _BAD_IDS)
    letters = dlq.select(["_position", "stage", "error_type", "value"]).to_pylist()
    assert sorted(letters, key=lambda d: int(d["_position"])) == [
        {"_position": str(n), "stage": "write", "error_type": "SchemaMismatch", "value": _tweet(n)}
        for n in _BAD_IDS
    ]
    assert all(m.startswith("column 'id': ") for m in dlq["message"].to_pylist())
    ids = out["_record_id"].to_pylist() + dlq["_record_id"].to_pylist()
    assert len(ids) == len(set(ids)) == 20  # none lost, none twice
    assert _resume_from(lake).frontiers("kafka", topic) == {"0": "19"}
