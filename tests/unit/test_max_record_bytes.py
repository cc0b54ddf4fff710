"""``--max_record_bytes``: reaches DecodeAndValidate in both pipelines; bad values exit 2."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.transforms.display import DisplayData
from deltalake import DeltaTable

from beam_pipelines import sentiment, telemetry
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets

ROOT = Path(__file__).resolve().parents[2]


def _tweets(tmp_path: Path, count: int) -> str:
    path = tmp_path / "tweets.jsonl"
    publish(f"file://{path}", generate_tweets(count, bad_ratio=0.0))
    return f"file://{path}"


def test_a_tiny_limit_makes_every_record_a_record_too_large_dead_letter(tmp_path: Path) -> None:
    source = _tweets(tmp_path, 12)
    outputs = [f"--output={tmp_path / 'out'}", f"--dlq={tmp_path / 'dlq'}", "--runner=direct"]

    sentiment.run([f"--source={source}", *outputs, "--max_record_bytes=40"])

    letters = DeltaTable(str(tmp_path / "dlq")).to_pyarrow_table().to_pylist()
    assert Counter(row["error_type"] for row in letters) == {"RecordTooLarge": 12}
    assert "the limit is 40 (max_record_bytes)" in letters[0]["message"]


def _decode_display(module: Any, flags: list[str]) -> dict[str, Any]:
    options = PipelineOptions(["--source=file:///data/x.jsonl", *flags])
    pipeline = beam.Pipeline(options=options)
    module.build(pipeline, options)
    decode = pipeline._current_transform().parts  # the top-level steps
    step = next(part for part in decode if part.full_label == "Decode")
    return {item.key: item.value for item in DisplayData.create_from(step.transform).items}


@pytest.mark.parametrize(
    ("module", "outputs"),
    [
        (sentiment, ["--output=/lake/o", "--dlq=/lake/d"]),
        (
            telemetry,
            [
                "--output=/lake/o",
                "--dlq=/lake/d",
                "--readings_output=/lake/r",
                "--late_output=/lake/l",
            ],
        ),
    ],
)
def test_the_flag_reaches_the_decode_step_of_both_pipelines(module: Any, outputs: list[str]):
    assert _decode_display(module, outputs)["max_record_bytes"] == 1 << 20  # the default, 1 MiB
    assert (
        _decode_display(module, [*outputs, "--max_record_bytes=4096"])["max_record_bytes"] == 4096
    )


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5"])
def test_a_bad_value_exits_2_naming_the_flag(tmp_path: Path, value: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "beam_pipelines.sentiment",
            f"--source=file://{tmp_path}/none.jsonl",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
            f"--max_record_bytes={value}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "--max_record_bytes" in done.stderr.splitlines()[-1]
    assert "Traceback" not in done.stderr
