"""Bad configuration ends with exit 2 and a message naming the flag: never a traceback.

Every case runs the command as a user does (a subprocess) and checks the exit status,
the flag named on stderr's last line and that no traceback was printed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets

ROOT = Path(__file__).resolve().parents[2]
BROKER_DOWN = "kafka://127.0.0.1:9/tweets"  # port 9 (discard): nothing answers


def _run(args: list[str], *, user: list[str] | None = None, timeout: int = 180) -> tuple[int, str]:
    done = subprocess.run(
        [*(user or []), sys.executable, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, "HOME": tempfile.gettempdir()},
    )
    return done.returncode, done.stderr


def _assert_refused(code: int, stderr: str, flag: str, *words: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {flag}: "), stderr
    for word in words:
        assert word in last, stderr


def _is_librdkafka_setting(key: str) -> bool:
    from confluent_kafka import Consumer, KafkaException

    try:
        Consumer({key: "1", "group.id": "g", "log_level": 0}).close()
    except KafkaException as err:
        return "No such configuration property" not in str(err)
    return True


_SEGMENT = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=2, max_size=10)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=st.lists(_SEGMENT, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda key: not _is_librdkafka_setting(key))
)
@example(key="sasl.pasword")  # typos of real settings
@example(key="bootstrap_servers")
def test_an_unknown_kafka_setting_exits_2_naming_the_flag(key: str) -> None:
    lake = Path(tempfile.mkdtemp(prefix="dataplane-test-"))
    try:
        code, stderr = _run(
            [
                "-m",
                "beam_pipelines.sentiment",
                f"--source={BROKER_DOWN}",
                "--bounded",
                "--source_timeout_s=1",
                f"--output={lake / 'tweets'}",
                f"--dlq={lake / 'dead_letters'}",
                "--kafka_config",
                f"{key}=1",
            ]
        )
    finally:
        shutil.rmtree(lake)
    _assert_refused(code, stderr, "--kafka_config", f'"{key}"')


def test_an_unknown_setting_in_the_kafka_config_file_names_that_flag(tmp_path: Path) -> None:
    properties = tmp_path / "client.properties"
    properties.write_text("sasl.username=bob\nsasl.mechanisms.typo=PLAIN\n")
    code, stderr = _run(
        [
            "-m",
            "runners.cli",
            "run",
            "sentiment",
            f"--source={BROKER_DOWN}",
            f"--output={tmp_path / 'tweets'}",
            f"--dlq={tmp_path / 'dead_letters'}",
            f"--kafka_config_file={properties}",
        ]
    )
    _assert_refused(code, stderr, "--kafka_config_file", '"sasl.mechanisms.typo"')


# Bad places for an output: (name, flag, make(lake) -> (path, words the message holds)).
def _under_a_file(lake: Path) -> tuple[Path, list[str]]:
    (lake / "notes.txt").write_text("x")
    return lake / "notes.txt" / "tweets", ["notes.txt is a file"]


def _deep_under_a_file(lake: Path) -> tuple[Path, list[str]]:
    (lake / "notes.txt").write_text("x")
    return lake / "notes.txt" / "a" / "b" / "tweets", ["notes.txt is a file"]


def _a_file(lake: Path) -> tuple[Path, list[str]]:
    (lake / "tweets.json").write_text("{}")
    return lake / "tweets.json", ["is a file, not a directory"]


def _read_only(lake: Path) -> tuple[Path, list[str]]:
    lake.chmod(0o777)  # the other output stays writable for the user the run is
    (lake / "ro").mkdir()
    (lake / "ro").chmod(0o555)
    return lake / "ro" / "tweets", ["is not writable"]


def _system(lake: Path) -> tuple[Path, list[str]]:
    return Path("/sys/dataplane-lake/tweets"), ["/sys is not writable"]


def _foreign(lake: Path) -> tuple[Path, list[str]]:
    (lake / "tweets").mkdir()
    (lake / "tweets" / "report.csv").write_text("a,b\n")
    return lake / "tweets", ["is not a Delta table", "report.csv"]


def _foreign_subdirectory(lake: Path) -> tuple[Path, list[str]]:
    (lake / "tweets" / "2026").mkdir(parents=True)
    return lake / "tweets", ["is not a Delta table", "'2026'"]


def _foreign_parquet(lake: Path) -> tuple[Path, list[str]]:
    (lake / "tweets").mkdir()
    (lake / "tweets" / "tweets.parquet").write_bytes(b"PAR1")  # someone else's Parquet
    return lake / "tweets", ["is not a Delta table", "tweets.parquet"]


BAD_OUTPUTS: list[tuple[str, str, Callable[[Path], tuple[Path, list[str]]]]] = [
    ("under a file", "--output", _under_a_file),
    ("deep under a file", "--dlq", _deep_under_a_file),
    ("a file", "--dlq", _a_file),
    ("a read-only directory", "--output", _read_only),
    ("a system directory", "--dlq", _system),
    ("a directory of other files", "--output", _foreign),
    ("a directory of other directories", "--dlq", _foreign_subdirectory),
    ("a directory of other Parquet files", "--output", _foreign_parquet),
]


@pytest.fixture
def lake() -> Iterator[Path]:
    """A directory any user can enter (a read-only case runs as nobody when we are root)."""
    path = Path(tempfile.mkdtemp(prefix="dataplane-test-"))
    path.chmod(0o755)
    yield path
    for below in path.rglob("*"):
        if below.is_dir():
            below.chmod(0o755)
    shutil.rmtree(path)


def _as_an_ordinary_user(lake: Path) -> list[str]:
    """Root writes anywhere permissions say it may not: run as nobody then."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: a read-only directory cannot be made")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@pytest.mark.parametrize(("kind", "flag", "make"), BAD_OUTPUTS, ids=[b[0] for b in BAD_OUTPUTS])
def test_a_bad_output_exits_2_naming_the_flag(
    kind: str, flag: str, make: Callable[[Path], tuple[Path, list[str]]], lake: Path
) -> None:
    tweets = lake / "tweets.jsonl"
    publish(f"file://{tweets}", generate_tweets(4, bad_ratio=0.5))  # rows for both outputs
    tweets.chmod(0o644)
    bad, words = make(lake)
    other = "--dlq" if flag == "--output" else "--output"
    user = _as_an_ordinary_user(lake) if make is _read_only else []
    code, stderr = _run(
        [
            "-m",
            "beam_pipelines.sentiment",
            f"--source=file://{tweets}",
            f"{flag}={bad}",
            f"{other}={lake / 'other'}",
        ],
        user=user,
    )
    _assert_refused(code, stderr, flag, *words)
    assert not (lake / "other").exists()  # refused before anything was written


def test_a_telemetry_output_that_is_not_a_delta_table_is_refused(lake: Path) -> None:
    (lake / "late").mkdir()
    (lake / "late" / "notes.txt").write_text("x")
    code, stderr = _run(
        [
            "-m",
            "runners.cli",
            "run",
            "telemetry",
            f"--source=file://{lake}/readings.parquet",
            f"--output={lake / 'windows'}",
            f"--readings_output={lake / 'readings'}",
            f"--late_output={lake / 'late'}",
            f"--dlq={lake / 'dlq'}",
        ]
    )
    _assert_refused(code, stderr, "--late_output", "is not a Delta table")


def test_the_graph_of_an_unbounded_source_is_drawn(tmp_path: Path) -> None:
    out = tmp_path / "graph.png"
    code, stderr = _run(
        ["-m", "runners.cli", "graph", "telemetry", "--out", str(out), f"--source={BROKER_DOWN}"]
    )
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert out.read_bytes().startswith(b"\x89PNG")
