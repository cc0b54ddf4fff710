"""Named runner profiles: expansion, precedence, and every error naming its flag."""

from __future__ import annotations

from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from beam_pipelines import sentiment
from beam_pipelines.launch.profiles import expand_profile
from runners.local.process import free_port
from schemas.errors import ConfigError


def write_profiles(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.yaml"
    path.write_text(text)
    return path


def test_a_profile_expands_to_flags_and_the_command_line_wins(tmp_path: Path) -> None:
    path = write_profiles(
        tmp_path,
        "profiles:\n  mine:\n    runner: portable\n    job_endpoint: localhost:1\n"
        "    streaming: true\n    kafka_config: [a=1, b=2]\n    bounded: false\n",
    )
    argv = expand_profile(["--profile", "mine", f"--profiles_file={path}", "--job_endpoint=h:2"])

    assert argv == [
        "--runner=portable",
        "--job_endpoint=localhost:1",
        "--streaming",
        "--kafka_config=a=1",
        "--kafka_config=b=2",
        "--job_endpoint=h:2",
    ]
    assert PipelineOptions(argv).get_all_options()["job_endpoint"] == "h:2"


def test_without_a_profile_the_command_line_is_unchanged() -> None:
    assert expand_profile(["--runner=direct", "--bounded"]) == ["--runner=direct", "--bounded"]


def test_the_environment_names_the_profiles_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_profiles(tmp_path, "profiles:\n  env-one:\n    runner: flink\n")
    monkeypatch.setenv("DATAPLANE_PROFILES", str(path))
    assert expand_profile(["--profile=env-one"]) == ["--runner=flink"]


@pytest.mark.parametrize(
    ("text", "argv", "message"),
    [
        (
            "profiles:\n  a: {}\n  b: {}\n",
            ["--profile=zzz"],
            r"--profile: unknown profile 'zzz'; .* has: a, b",
        ),
        (
            "runner: direct\n",
            ["--profile=a"],
            "--profiles_file: .* expected a top-level 'profiles'",
        ),
        ("profiles: [\n", ["--profile=a"], "--profiles_file: .* is not YAML"),
        ("profiles:\n  a: [x]\n", ["--profile=a"], "--profile: .* profile 'a' must map flags"),
        ("profiles: {}\n", [], "--profiles_file: given without --profile NAME"),
        ("profiles: {}\n", ["--profile"], "--profile: expected a value after it"),
    ],
)
def test_profile_errors_name_the_flag(
    tmp_path: Path, text: str, argv: list[str], message: str
) -> None:
    path = write_profiles(tmp_path, text)
    with pytest.raises(ConfigError, match=message):
        expand_profile([*argv, f"--profiles_file={path}"])


def test_a_missing_profiles_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--profiles_file: cannot read .*nope\.yaml"):
        expand_profile(["--profile=a", f"--profiles_file={tmp_path / 'nope.yaml'}"])


def test_a_pipeline_run_with_a_portable_profile_fails_fast_without_a_job_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoint = f"127.0.0.1:{free_port()}"
    path = write_profiles(
        tmp_path, f"profiles:\n  p:\n    runner: portable\n    job_endpoint: {endpoint}\n"
    )
    flags = ["--source=file:///x.jsonl", "--output=/tmp/o", "--dlq=/tmp/d", "--bounded"]
    assert sentiment.main(["--profile=p", f"--profiles_file={path}", *flags]) == 2
    assert f"--job_endpoint: nothing answers at {endpoint}" in capsys.readouterr().err
