"""Runner presets: every fail-fast message names its flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from beam_pipelines.launch.presets import resolve_runner
from runners.local.process import free_port
from schemas.errors import ConfigError

DATAFLOW = [
    "--runner=dataflow",
    "--project=my-project",
    "--region=europe-west1",
    "--temp_location=gs://example-bucket/tmp",
    "--setup_file=./setup.py",
]


def resolve(flags: list[str], *, bounded: bool = True) -> object:
    return resolve_runner(PipelineOptions(flags), bounded=bounded)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--runner=portable"], "--job_endpoint: --runner=PortableRunner needs the job service"),
        (
            ["--runner=PortableRunner", "--job_endpoint=nohostport"],
            "--job_endpoint: expected HOST:",
        ),
        (["--runner=flink"], "--flink_job_server_jar: --runner=FlinkRunner needs a Flink job"),
        (
            ["--runner=flink", "--flink_job_server_jar=/nonexistent/job-server.jar"],
            "--flink_job_server_jar: no such file: /nonexistent/job-server.jar",
        ),
        ([*DATAFLOW[:1], *DATAFLOW[2:]], "--project: --runner=DataflowRunner needs it"),
        ([*DATAFLOW[:2], *DATAFLOW[3:]], "--region: --runner=DataflowRunner needs it"),
        ([*DATAFLOW[:3], *DATAFLOW[4:]], "--temp_location: --runner=DataflowRunner needs it"),
        ([*DATAFLOW[:3], "--temp_location=/tmp/x", DATAFLOW[4]], "--temp_location: expected a gs"),
        (DATAFLOW[:4], "--setup_file: Dataflow workers need this library"),
    ],
)
def test_each_preset_names_the_flag_it_lacks(flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(flags)


def test_an_unreachable_job_endpoint_fails_fast_for_portable_and_flink() -> None:
    endpoint = f"--job_endpoint=127.0.0.1:{free_port()}"
    for runner in ("--runner=portable", "--runner=FlinkRunner"):
        with pytest.raises(ConfigError, match=r"--job_endpoint: nothing answers at 127\.0\.0\.1:"):
            resolve([runner, endpoint])


def test_good_presets_resolve_to_beams_runners(tmp_path: Path) -> None:
    jar = tmp_path / "beam-runners-flink-job-server.jar"
    jar.write_bytes(b"")
    assert resolve(DATAFLOW) == "DataflowRunner"
    assert resolve(["--runner=flink", f"--flink_job_server_jar={jar}"]) == "FlinkRunner"
    options = PipelineOptions(DATAFLOW)
    resolve_runner(options, bounded=False)
    assert options.view_as(StandardOptions).streaming
