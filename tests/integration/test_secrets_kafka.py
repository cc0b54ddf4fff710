"""Kafka runs with secrets on every local runner: nothing shows them, the workers have them.

The sentiment pipeline reads Confluent-framed tweets from the real broker, with a
generated secret in each Kafka and storage carrier and the registry behind a proxy
that refuses any other password, on the batch runner, the local streaming runner
and PortableRunner (LOOPBACK) on our job service, run in this process and stopped
as Ctrl-C would. What the runner received, the logs at DEBUG and the output hold no
secret; every tweet lands, so the workers' registry lookups carried the password.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from hypothesis import HealthCheck, Phase, given, settings

from beam_pipelines import sentiment
from beam_pipelines.feeds.kafka import produce
from beam_pipelines.feeds.tweets import generate_tweets
from schemas.registry import LocalFileRegistry
from tests.unit.secret_leaks import BasicAuthRegistry, Exposures, assert_hidden, secret_sets
from transforms.stop import clear_stop, request_stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TWEETS = 40
START_UP_S = 120.0


@pytest.fixture(params=["batch", "streaming", "portable"])
def runner(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "batch":
        return ["--runner=direct", "--bounded"]
    if request.param == "streaming":
        return ["--runner=direct", "--max_batch_latency_s=1"]
    endpoint = request.getfixturevalue("streaming_job_service")
    return [
        "--runner=portable",
        f"--job_endpoint={endpoint}",
        "--environment_type=LOOPBACK",
        "--max_batch_latency_s=1",
    ]


@pytest.fixture
def guarded_registry(registry_url: str) -> Iterator[BasicAuthRegistry]:
    proxy = BasicAuthRegistry(registry_url, "user:reg-Hn4&tL8!")
    yield proxy
    proxy.close()


def _rows(table: Path) -> int:
    try:
        return DeltaTable(str(table)).to_pyarrow_table().num_rows
    except TableNotFoundError:
        return 0


def _run(argv: list[str], table: Path, *, streaming: bool) -> Any:
    """Runs the pipeline; a streaming one in a thread, stopped once ``table`` has every tweet."""
    if not streaming:
        return sentiment.run(argv)
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["summary"] = sentiment.run(argv)
        except BaseException as err:
            done["error"] = err

    clear_stop()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_UP_S
    while _rows(table) < TWEETS and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.5)
    request_stop()
    thread.join(60)
    clear_stop()
    assert not thread.is_alive(), "the streaming run did not stop"
    if "error" in done:
        raise done["error"]
    return done["summary"]


@settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secrets=secret_sets())
def test_a_kafka_run_shows_no_secret_and_its_workers_use_them(
    secrets: dict[str, str],
    runner: list[str],
    kafka_bootstrap: str,
    new_topic: Any,
    guarded_registry: BasicAuthRegistry,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = Exposures().install(monkeypatch)
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    lake = tmp_path_factory.mktemp("lake")
    topic = new_topic(partitions=2)
    produce(
        kafka_bootstrap,
        topic,
        generate_tweets(TWEETS, bad_ratio=0.0, schema=LocalFileRegistry().get("tweet")),
        partitions=2,
    )
    properties = lake / "client.properties"
    properties.write_text(f"ssl.key.password={secrets['kafka_file_key_password']}\n")
    monkeypatch.setenv("DATAPLANE_TEST_OAUTH_SECRET", secrets["kafka_oauth_secret"])
    host = guarded_registry.url.split("://", 1)[1]
    argv = [
        f"--source=kafka://{kafka_bootstrap}/{topic}",
        f"--output={lake / 'tweets'}",
        f"--dlq={lake / 'dead_letters'}",
        *runner,
        "--kafka_config",
        f"sasl.password={secrets['kafka_sasl_password']}",
        "--kafka_config=sasl.oauthbearer.client.secret=${env:DATAPLANE_TEST_OAUTH_SECRET}",
        f"--kafka_config_file={properties}",
        "--registry=http://user:reg-Hn4%26tL8!@" + host,
        f"--storage_option=AWS_SECRET_ACCESS_KEY={secrets['aws_secret']}",
        f"--s3_session_token={secrets['s3_token']}",
    ]

    _run(argv, lake / "tweets", streaming="--bounded" not in runner)

    assert _rows(lake / "tweets") == TWEETS
    assert guarded_registry.by_id > 0 and guarded_registry.refused == 0
    given_here = {
        name: secrets[name]
        for name in (
            "kafka_sasl_password",
            "kafka_oauth_secret",
            "kafka_file_key_password",
            "aws_secret",
            "s3_token",
        )
    }
    assert_hidden({**given_here, "registry": "reg-Hn4&tL8!"}, seen, caplog, capfd)
    assert seen.runs, "the runner was never handed the pipeline"
