"""``dataplane pipelines`` and ``dataplane run``."""

from __future__ import annotations

import pytest

from runners.cli.main import main as dataplane


def test_pipelines_lists_each_pipeline_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert dataplane(["pipelines"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["sentiment", "telemetry"]
    assert "5-minute average speed per vehicle" in lines[1]


def test_run_passes_help_to_the_pipeline(capsys: pytest.CaptureFixture[str]) -> None:
    assert dataplane(["run", "telemetry", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--allowed_lateness_s" in out and "--runner" in out


def test_run_names_the_pipelines_when_one_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    assert dataplane(["run", "nope"]) == 2
    assert (
        "unknown pipeline 'nope'; expected one of sentiment, telemetry" in capsys.readouterr().err
    )


def test_run_reports_a_bad_pipeline_flag_with_exit_status_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    flags = ["--source=file:///x.jsonl", "--output=/tmp/o", "--dlq=/tmp/d", "--subject_version=0"]
    assert dataplane(["run", "sentiment", *flags]) == 2
    assert "--subject_version: expected a version number >= 1" in capsys.readouterr().err


def test_dlq_replay_refuses_pipelines_that_aggregate_and_needs_the_output(capsys, tmp_path):
    from runners.cli.main import main

    assert main(["dlq", "replay", "telemetry", "--from", str(tmp_path), "--", "--output=x"]) == 2
    assert "telemetry cannot replay dead letters" in capsys.readouterr().err
    assert main(["dlq", "replay", "sentiment", "--from", str(tmp_path)]) == 2
    assert "--output: required after --" in capsys.readouterr().err
