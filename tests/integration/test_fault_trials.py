"""The short version of the kill -9 trials (``make chaos`` runs the long one)."""

import pytest

from tests.faults.chaos import KafkaFeed, KinesisFeed, run_trials

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _check(report):
    assert report.produced > 0 and report.rows == report.produced
    assert (report.lost, report.duplicated, report.wrong_content) == (0, 0, 0)
    assert all(t.offsets_ok for t in report.trials)
    assert any(t.outcome.startswith("killed") for t in report.trials)


def test_kill9_during_runs_and_commits_kafka_exactly_once(kafka_bootstrap, tmp_path):
    feed = KafkaFeed(kafka_bootstrap, records=1500, rate_per_s=400, seed=3)
    report = run_trials(feed, trials=4, lake_root=tmp_path, seed=3, kill_window_s=(1.5, 4.0))
    _check(report)


def test_kill9_during_runs_and_commits_kinesis_exactly_once(moto_endpoint, tmp_path):
    feed = KinesisFeed(moto_endpoint, records=1000, rate_per_s=300, seed=4)
    report = run_trials(feed, trials=3, lake_root=tmp_path, seed=4, kill_window_s=(1.5, 4.0))
    _check(report)
