"""The short version of the streaming fault trials (``make chaos-streaming`` runs the long one).

Each source gets three faults, so that the two together cover every kind: a kill
at a random moment, inside a Delta commit, inside a group-offset commit, a zombie
writer, and the broker (or Kinesis endpoint) down for 10 s. The telemetry trial
kills its pipeline twice and compares the windows with a computation of our own.
"""

from pathlib import Path

import pytest

from tests.faults.chaos import KafkaFeed, KinesisFeed
from tests.faults.chaos_streaming import (
    VEHICLES,
    StreamingReport,
    TelemetryFeed,
    kafka_source,
    kinesis_source,
    print_streaming_report,
    run_streaming_trials,
    run_telemetry_trial,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _check(report: StreamingReport, faults: list[str]) -> None:
    print_streaming_report([report])
    assert [t.mode for t in report.trials] == [*faults, "drain"]
    assert report.produced > 0 and report.rows >= report.produced
    assert (report.lost, report.duplicated, report.wrong_content) == (0, 0, 0)
    for trial in report.trials:
        assert (trial.lost, trial.duplicated, trial.wrong_content) == (0, 0, 0), trial
        assert trial.offsets_ok, trial
        assert all(code == 0 for code in trial.exit_codes), trial  # Ctrl-C stops exit 0
        assert trial.drained_s is not None or trial.number == 1, trial  # each restart caught up
    assert report.exactly_once


def test_streaming_kafka_faults_keep_every_record_once(tmp_path: Path) -> None:
    faults = ["kill-in-offset-commit", "zombie", "broker-down"]
    with kafka_source() as kafka:
        feed = KafkaFeed(kafka.endpoint, records=3000, rate_per_s=50, seed=3)
        report = run_streaming_trials(feed, kafka, modes=faults, lake_root=tmp_path, seed=3)
    _check(report, faults)
    outcomes = [t.outcome for t in report.trials]
    assert outcomes[0] == "killed in an offset commit"  # the failpoint fired
    assert outcomes[1] == "zombie resumed beside a second run"


def test_streaming_kinesis_faults_keep_every_record_once(
    kinesalite_endpoint: str, tmp_path: Path
) -> None:
    faults = ["kill", "kill-in-commit", "broker-down"]
    with kinesis_source(tmp_path) as kinesis:
        feed = KinesisFeed(kinesis.endpoint, records=2000, rate_per_s=50, seed=4)
        report = run_streaming_trials(feed, kinesis, modes=faults, lake_root=tmp_path, seed=4)
    _check(report, faults)


def test_telemetry_windows_after_kills_equal_an_independent_computation(tmp_path: Path) -> None:
    with kafka_source() as kafka:
        feed = TelemetryFeed(kafka.endpoint, records=3000, rate_per_s=100, seed=5)
        report = run_telemetry_trial(feed, kills=2, lake_root=tmp_path, seed=5)
    print_streaming_report([report])
    assert report.windows >= 2 * VEHICLES  # more than one window per vehicle
    assert report.aggregates_ok, report
    assert all(code == 0 for t in report.trials for code in t.exit_codes)
