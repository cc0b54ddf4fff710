"""Runner presets: the right local runner for ``--runner=direct``, and fail-fast checks.

Short names map onto Beam's runners (``direct``, ``portable``, ``flink``,
``dataflow``); each remote runner's required flags are checked before the pipeline
is built, with a message that names the missing or wrong flag and an example.
"""

from __future__ import annotations

import socket
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineRunner

from schemas.errors import ConfigError

__all__ = [
    "DIRECT_NAMES",
    "RUNNER_ALIASES",
    "check_runner_options",
    "resolve_runner",
    "runs_in_this_process",
]

# Names that mean "run it here". Beam's DirectRunner first tries to download the
# Prism binary (fails offline, then falls back); these pick a local runner directly.
DIRECT_NAMES = ("direct", "directrunner")
RUNNER_ALIASES = {
    "portable": "PortableRunner",
    "flink": "FlinkRunner",
    "dataflow": "DataflowRunner",
}
_CONNECT_TIMEOUT_S = 2.0


def resolve_runner(options: PipelineOptions, *, bounded: bool) -> PipelineRunner | str:
    """The runner to pass to ``beam.Pipeline`` for these options, after checking them.

    ``direct`` (or no runner, or ``DirectRunner``) becomes
    :class:`~beam_pipelines.launch.local_batch.LocalBatchRunner` (Beam's FnApiRunner, flattens
    fused) for a bounded run and
    :class:`~beam_pipelines.launch.local_streaming.LocalStreamingRunner` (in this
    process, offline) for a streaming one; ``portable``, ``flink`` and ``dataflow``
    become Beam's runners of those names; any other name (``PrismRunner`` too) is
    handed to Beam unchanged. An unbounded source sets ``--streaming`` on every runner.

    >>> from apache_beam.options.pipeline_options import PipelineOptions
    >>> type(resolve_runner(PipelineOptions(["--runner=direct"]), bounded=True)).__name__
    'LocalBatchRunner'
    >>> type(resolve_runner(PipelineOptions(["--runner=direct"]), bounded=False)).__name__
    'LocalStreamingRunner'
    >>> resolve_runner(PipelineOptions(["--runner=SparkRunner"]), bounded=True)
    'SparkRunner'
    """
    standard = options.view_as(StandardOptions)
    name = standard.runner
    if name is not None and name.lower() in RUNNER_ALIASES:
        name = standard.runner = RUNNER_ALIASES[name.lower()]
    if not bounded:
        standard.streaming = True
    if name is not None and name.lower() not in DIRECT_NAMES:
        check_runner_options(options, bounded=bounded)
        return name
    if bounded and not standard.streaming:
        from beam_pipelines.launch.local_batch import LocalBatchRunner

        return LocalBatchRunner()
    from beam_pipelines.launch.local_streaming import LocalStreamingRunner

    return LocalStreamingRunner()


def runs_in_this_process(runner: PipelineRunner | str, options: PipelineOptions) -> bool:
    """Whether the pipeline's DoFns run in this process (local runners, LOOPBACK workers).

    >>> from apache_beam.options.pipeline_options import PipelineOptions
    >>> options = PipelineOptions(["--environment_type=LOOPBACK"])
    >>> runs_in_this_process("PortableRunner", options)
    True
    >>> runs_in_this_process("DataflowRunner", PipelineOptions([]))
    False
    """
    if not isinstance(runner, str):
        return True
    environment = str(options.get_all_options().get("environment_type") or "").upper()
    return environment == "LOOPBACK"


def check_runner_options(options: PipelineOptions, *, bounded: bool) -> None:
    """Raises ConfigError naming the flag a remote runner lacks or has wrong."""
    every = options.get_all_options()
    runner = str(every.get("runner") or "")
    if runner == "PortableRunner":
        _check_job_endpoint(every.get("job_endpoint"), runner)
    elif runner == "FlinkRunner":
        _check_flink(every)
    elif runner == "DataflowRunner":
        _check_dataflow(options, bounded=bounded)


def _check_job_endpoint(endpoint: str | None, runner: str) -> None:
    if not endpoint:
        raise ConfigError(
            "--job_endpoint",
            f"--runner={runner} needs the job service address, e.g. --job_endpoint=localhost:8099",
        )
    _require_reachable("--job_endpoint", endpoint)


def _require_reachable(flag: str, endpoint: str) -> None:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(flag, f"expected HOST:PORT, got {endpoint!r}")
    try:
        socket.create_connection((host or "localhost", int(port)), _CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ConfigError(
            flag, f"nothing answers at {endpoint} ({err.strerror or err}); is the job service up?"
        ) from None


def _check_flink(every: dict) -> None:
    jar, endpoint = every.get("flink_job_server_jar"), every.get("job_endpoint")
    if jar:
        if not Path(jar).is_file():
            raise ConfigError("--flink_job_server_jar", f"no such file: {jar}")
        return
    if endpoint:
        _require_reachable("--job_endpoint", endpoint)
        return
    raise ConfigError(
        "--flink_job_server_jar",
        "--runner=FlinkRunner needs a Flink job server: --flink_job_server_jar=PATH (the "
        "beam-runners-flink-<version>-job-server jar; Beam would otherwise download it) or "
        "--job_endpoint=HOST:PORT of a running job server",
    )


def _check_dataflow(options: PipelineOptions, *, bounded: bool) -> None:
    every = options.get_all_options()
    for flag, example in (
        ("project", "my-gcp-project"),
        ("region", "europe-west1"),
        ("temp_location", "gs://my-bucket/tmp"),
    ):
        if not every.get(flag):
            raise ConfigError(
                f"--{flag}", f"--runner=DataflowRunner needs it, e.g. --{flag}={example}"
            )
    for flag in ("temp_location", "staging_location"):
        value = every.get(flag)
        if value and not str(value).startswith("gs://"):
            raise ConfigError(f"--{flag}", f"expected a gs:// path on Dataflow, got {value!r}")
    if not (every.get("setup_file") or every.get("sdk_container_image")):
        raise ConfigError(
            "--setup_file",
            "Dataflow workers need this library: --setup_file=./setup.py (built and installed "
            "on each worker) or --sdk_container_image=IMAGE with it preinstalled",
        )
