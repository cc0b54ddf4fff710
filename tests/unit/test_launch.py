"""Launching: streaming graphs for every runner, dry runs and launches that do not wait."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_pipelines import sentiment, telemetry
from beam_pipelines.launch import launcher as launch
from beam_pipelines.launch.presets import resolve_runner
from beam_pipelines.launch.summary import NoSummary, RunSummary
from tests.helpers import dataflow_dry_run_flags

SETUP_PY = Path(__file__).resolve().parents[2] / "setup.py"
UNREACHABLE_KAFKA = "kafka://127.0.0.1:9/tweets"  # port 9 (discard): nothing answers


@pytest.fixture
def listening_port() -> Iterator[int]:
    """A port something answers on (the presets only check that a job service is reachable)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def _readme_flink(jar: Path) -> list[str]:
    return [
        "--runner=flink",
        f"--flink_job_server_jar={jar}",
        "--flink_master=FLINK_HOST:8081",
        "--environment_type=DOCKER",
        "--sdk_container_image=IMAGE",
    ]


def _graph(module: Any, flags: list[str], outputs: list[str]) -> tuple[PipelineOptions, Any]:
    options = PipelineOptions([f"--source={UNREACHABLE_KAFKA}", *flags, *outputs])
    runner = resolve_runner(options, bounded=False)
    pipeline = beam.Pipeline(runner=runner, options=options)
    module.build(pipeline, options)
    return options, pipeline.to_runner_api()


SENTIMENT_OUTPUTS = ["--output=/tmp/lake/tweets", "--dlq=/tmp/lake/dead_letters"]
TELEMETRY_OUTPUTS = [
    "--output=/tmp/lake/w",
    "--readings_output=/tmp/lake/r",
    "--late_output=/tmp/lake/l",
    "--dlq=/tmp/lake/d",
]


@pytest.mark.parametrize(
    ("module", "outputs"), [(sentiment, SENTIMENT_OUTPUTS), (telemetry, TELEMETRY_OUTPUTS)]
)
@pytest.mark.parametrize("runner", ["flink-jar", "flink-endpoint", "portable", "direct"])
def test_every_runner_builds_a_streaming_graph_for_an_unbounded_source(
    runner: str, module: Any, outputs: list[str], tmp_path: Path, listening_port: int
) -> None:
    jar = tmp_path / "beam-runners-flink-1.18-job-server-2.77.0.jar"
    jar.write_bytes(b"")
    endpoint = f"--job_endpoint=localhost:{listening_port}"
    flags = {
        "flink-jar": _readme_flink(jar),
        "flink-endpoint": ["--runner=flink", endpoint, "--environment_type=LOOPBACK"],
        "portable": ["--runner=portable", endpoint, "--environment_type=LOOPBACK"],
        "direct": ["--runner=direct"],
    }[runner]
    options, proto = _graph(module, flags, outputs)
    assert options.view_as(StandardOptions).streaming
    names = {t.unique_name for t in proto.components.transforms.values()}
    assert {"Read", "Decode", "WriteDeadLetters"} <= names
    assert any(name.endswith("/Batch/Group/Batch") for name in names)  # the streaming batcher


def test_a_dataflow_dry_run_builds_without_waiting_for_the_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    waited: list[str] = []
    monkeypatch.setattr(launch, "wait_for_source", lambda uri, **_: waited.append(uri))
    code = sentiment.main(
        [
            f"--source={UNREACHABLE_KAFKA}",
            *dataflow_dry_run_flags(SETUP_PY),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and waited == []
    assert "dry run: built the job for DataflowRunner" in out and "WriteScored" in out


def test_source_timeout_zero_skips_the_reachability_wait(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    waited: list[str] = []
    monkeypatch.setattr(launch, "wait_for_source", lambda uri, **_: waited.append(uri))
    source = tmp_path / "tweets.jsonl"
    source.write_text('{"id": "1"}\n')
    flags = [f"--output={tmp_path / 'out'}", f"--dlq={tmp_path / 'dlq'}", "--runner=direct"]
    sentiment.run([f"--source=file://{source}", *flags, "--source_timeout_s=0"])
    sentiment.run([f"--source=file://{source}", *flags])
    assert waited == [f"file://{source}"]  # only the second run asked


class _NoMetrics:
    def metrics(self) -> Any:
        raise NotImplementedError


def test_a_runner_without_metrics_gets_one_line_instead_of_a_summary(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = RunSummary.collect(_NoMetrics(), output=None, dlq=None, elapsed_s=1.0)
    assert isinstance(summary, NoSummary)
    summary.print()
    assert capsys.readouterr().out.startswith("no run summary: _NoMetrics reports no metrics")


def test_ctrl_c_asks_the_sources_to_stop_and_a_second_one_exits_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import signal

    from transforms.stop import clear_stop, stop_requested

    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    clear_stop()
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN where a shell started us in the background
    try:
        with launch._stop_on_signals(local=True):
            signal.raise_signal(signal.SIGINT)
            assert stop_requested() and exits == []
            signal.raise_signal(signal.SIGTERM)
            assert exits == [130]
    finally:
        clear_stop()
    err = capsys.readouterr().err
    assert "SIGINT: stopping: sources stop reading" in err
    assert "SIGTERM again: stopping now" in err
    assert signal.getsignal(signal.SIGINT) is before  # handlers restored


def test_ctrl_c_on_a_remote_runner_only_stops_waiting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import signal

    from transforms.stop import stop_requested

    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    with launch._stop_on_signals(local=False):
        signal.raise_signal(signal.SIGINT)
    assert exits == [0] and not stop_requested()
    assert "no longer waiting; the job goes on on its runner" in capsys.readouterr().err


def test_a_dry_run_on_a_local_runner_builds_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "tweets.jsonl"
    source.write_text('{"id": "1"}\n')
    flags = [f"--output={tmp_path / 'out'}", f"--dlq={tmp_path / 'dlq'}", "--runner=direct"]
    code = sentiment.main([f"--source=file://{source}", *flags, "--dry_run=True"])
    assert code == 0 and "dry run: built the job for LocalBatchRunner" in capsys.readouterr().out
    assert not (tmp_path / "out").exists() and not (tmp_path / "dlq").exists()


def test_not_waiting_for_a_run_in_this_process_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [f"--output={tmp_path / 'out'}", f"--dlq={tmp_path / 'dlq'}", "--runner=direct"]
    code = sentiment.main([f"--source=file://{tmp_path}/x.jsonl", *flags, "--no_wait_until_finish"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: --no_wait_until_finish: this run's workers")
