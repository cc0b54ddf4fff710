"""A pipeline built and never run (a dry run, a picture, a build that fails) leaves none of
Beam's ``beam-pipeline-temp*`` directories behind; a run leaves none either."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _left_behind(args: list[str], tmp_path: Path) -> tuple[int, list[str]]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    done = subprocess.run(
        [sys.executable, *args],
        env={**os.environ, "TMPDIR": str(temp)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, sorted(p.name for p in temp.glob("beam-pipeline-temp*"))


@pytest.fixture
def tweets(tmp_path: Path) -> str:
    path = tmp_path / "tweets.jsonl"
    rows = [{"id": str(n), "text": "good day", "user": "u", "created_at": 0} for n in range(3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return f"file://{path}"


@pytest.mark.parametrize(
    ("case", "extra", "code"),
    [
        ("dry run", ["--dry_run=True"], 0),
        ("a build that fails on its flags", ["--batch_size=0"], 2),
        ("a run", [], 0),
    ],
)
def test_a_pipeline_leaves_no_temp_dir(tmp_path, tweets, case, extra, code):
    lake = tmp_path / "lake"
    flags = [f"--source={tweets}", f"--output={lake}/out", f"--dlq={lake}/dlq", "--bounded"]
    exit_code, left = _left_behind(["-m", "beam_pipelines.sentiment", *flags, *extra], tmp_path)
    assert exit_code == code, case
    assert left == [], case


def test_a_picture_of_a_pipeline_leaves_no_temp_dir(tmp_path):
    out = tmp_path / "graph.svg"
    exit_code, left = _left_behind(
        ["-m", "runners.cli", "graph", "sentiment", "--out", str(out)], tmp_path
    )
    assert exit_code == 0
    assert out.read_text(encoding="utf-8").lstrip().startswith("<")
    assert left == []
