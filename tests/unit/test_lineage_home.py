"""A home directory the run may not read does not stop it (lineage is best effort)."""

from __future__ import annotations

from pathlib import Path

import pytest

from beam_pipelines.launch import lineage, lineage_config


def test_an_unreadable_home_means_no_lineage_configuration(monkeypatch, tmp_path) -> None:
    for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "someone-else"))
    monkeypatch.chdir(tmp_path)
    real = Path.is_file

    def is_file(path: Path) -> bool:  # what a non-root user gets from another user's home
        if "someone-else" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(Path, "is_file", is_file)
    assert lineage_config.lineage_configured() is False


def test_a_readable_config_in_the_working_directory_counts(monkeypatch, tmp_path) -> None:
    for name in ("OPENLINEAGE_URL", "OPENLINEAGE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "openlineage.yml").write_text("transport:\n  type: console\n")
    assert lineage_config.lineage_configured() is True


pytestmark = [pytest.mark.filterwarnings("ignore")]


def test_console_events_are_printed_one_json_per_line(capsys) -> None:
    import json

    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    client = lineage.lineage_client("console")
    assert client is not None
    event = RunEvent(
        eventType=RunState.START,
        eventTime="2026-11-23T00:00:00+00:00",
        run=Run(runId="01a20711-8895-72e7-93d2-efb7661fdfa4"),
        job=Job(namespace="dataplane", name="sentiment"),
        producer="test",
    )
    client.emit(event)
    (line,) = [x for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert json.loads(line)["eventType"] == "START"
