"""The telemetry pipeline's flags: documented in --help, checked before anything runs."""

from __future__ import annotations

import subprocess
import sys

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines import telemetry
from schemas.errors import ConfigError

REQUIRED = [
    "--source=file:///tmp/none.parquet",
    "--output=/tmp/o",
    "--readings_output=/tmp/r",
    "--late_output=/tmp/l",
    "--dlq=/tmp/d",
]
OWN_FLAGS = [
    "--readings_output",
    "--late_output",
    "--quality_output",
    "--suite",
    "--geohash_precision",
    "--window_s",
    "--window_period_s",
    "--allowed_lateness_s",
    "--early_after_count",
    "--readings_shards",
    "--readings_batch_size",
    "--readings_max_latency_s",
    "--source",
    "--bounded",
    "--output",
    "--dlq",
    "--registry",
    "--subject",
    "--storage_option",
    "--storage_config_file",
]


def test_help_documents_every_flag() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "beam_pipelines.telemetry", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    missing = [flag for flag in OWN_FLAGS if flag not in done.stdout]
    assert missing == []


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--geohash_precision=13"], "--geohash_precision: expected 1..12, got 13"),
        (["--window_s=0"], "--window_s: must be positive"),
        (["--window_period_s=70"], "--window_period_s: must be positive and divide"),
        (["--allowed_lateness_s=-5"], "--allowed_lateness_s: must not be negative"),
        (["--early_after_count=-1"], "--early_after_count: expected 0 or more"),
        (["--readings_shards=0"], "shards: must be positive"),
    ],
)
def test_bad_flags_fail_before_the_run_naming_the_flag(flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        telemetry.build(beam.Pipeline(), PipelineOptions([*REQUIRED, *flags]))


@pytest.mark.parametrize("missing", ["--source", "--output", "--readings_output", "--late_output"])
def test_a_missing_output_or_source_is_named(missing: str) -> None:
    flags = [flag for flag in REQUIRED if not flag.startswith(f"{missing}=")]
    with pytest.raises(ConfigError, match=f"{missing}: required"):
        telemetry.build(beam.Pipeline(), PipelineOptions(flags))


def test_main_reports_a_bad_flag_with_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert telemetry.main([*REQUIRED, "--geohash_precision=0"]) == 2
    assert "--geohash_precision: expected 1..12" in capsys.readouterr().err
