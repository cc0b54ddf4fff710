"""No secret given to a pipeline shows up in what runners receive, display, log or print.

Each example generates one secret per carrier (every flag and config file that can
hold one, see ``secret_leaks.CARRIERS``), runs the pipeline the way a user does
(``main(argv)``) and searches what the runner received (options, options display
data, every transform's display data, the runner API proto with its pickled steps
unpacked, Dataflow's job request), the logs at DEBUG, stdout and stderr.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from beam_pipelines import sentiment, telemetry
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from tests.unit.secret_leaks import (
    Exposures,
    assert_hidden,
    carried,
    leaks,
    secret_flags,
    secret_sets,
)

# No shrinking: each example is a whole pipeline launch; a failure names the carrier.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
SETUP = settings(
    max_examples=4,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DATAFLOW = [
    "--runner=dataflow",
    "--project=example-project",
    "--region=europe-west1",
    "--temp_location=gs://example-bucket/tmp",
    "--staging_location=gs://example-bucket/staging",
    "--sdk_container_image=example/beam-dataplane:latest",
    "--dry_run=True",
    "--no_auth",
]
OUTPUTS = {
    sentiment: ["--output=gs://example-bucket/lake/o", "--dlq=gs://example-bucket/lake/d"],
    telemetry: [
        "--output=gs://example-bucket/lake/o",
        "--dlq=gs://example-bucket/lake/d",
        "--readings_output=gs://example-bucket/lake/r",
        "--late_output=gs://example-bucket/lake/l",
    ],
}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> Exposures:
    return Exposures().install(monkeypatch)


@pytest.mark.parametrize("module", [sentiment, telemetry], ids=["sentiment", "telemetry"])
@SETUP
@given(secrets=secret_sets(), with_url_password=st.booleans())
def test_a_dataflow_job_holds_no_secret(
    module: Any,
    secrets: dict[str, str],
    with_url_password: bool,
    registry_url: str,
    seen: Exposures,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    seen.runs.clear()
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    flags = secret_flags(
        secrets, registry_url, tmp_path_factory.mktemp("conf"), with_url_password=with_url_password
    )
    source = "kafka://127.0.0.1:9/tweets"  # a dry run does not wait for it

    code = module.main([f"--source={source}", *OUTPUTS[module], *DATAFLOW, *flags])

    assert code == 0
    out, err = assert_hidden(
        carried(secrets, with_url_password=with_url_password), seen, caplog, capfd
    )
    assert "dry run: built the job for DataflowRunner" in out
    runner_proto = next(
        run.blobs["the runner's proto"] for run in seen.runs if run.blobs.get("the runner's proto")
    )
    # the finder looks inside the pickled steps: the Kafka settings' names are there
    assert leaks("sasl.oauthbearer.client.secret", runner_proto)
    # and the values given here travel as a file staged with the job
    assert b"dataplane-secrets-" in runner_proto and "staged with the job" in err


@SETUP
@given(secrets=secret_sets(), with_url_password=st.booleans())
def test_a_local_run_holds_no_secret_and_its_workers_have_them(
    secrets: dict[str, str],
    with_url_password: bool,
    registry_url: str,
    seen: Exposures,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    seen.runs.clear()
    caplog.clear()
    caplog.set_level(logging.DEBUG)
    lake = tmp_path_factory.mktemp("lake")
    publish(f"file://{lake}/tweets.jsonl", generate_tweets(20, bad_ratio=0.1))
    flags = secret_flags(secrets, registry_url, lake, with_url_password=with_url_password)

    code = sentiment.main(
        [
            f"--source=file://{lake}/tweets.jsonl",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            "--runner=direct",
            *flags,
        ]
    )

    assert code == 0
    assert_hidden(carried(secrets, with_url_password=with_url_password), seen, caplog, capfd)
    rows = DeltaTable(str(lake / "tweets")).to_pyarrow_table().num_rows
    letters = DeltaTable(str(lake / "dead_letters")).to_pyarrow_table().num_rows
    assert rows + letters == 20  # the workers opened the registry and the tables


def _failing(lake: Path, secret: str) -> dict[str, list[str]]:
    """Command lines that fail, each next to a secret (exit 2 unless said)."""
    tweets = f"--source=file://{lake}/tweets.jsonl"
    outputs = [tweets, f"--output={lake / 'o'}", f"--dlq={lake / 'd'}"]
    (lake / "a_file").write_text("x")
    return {
        "unknown Kafka setting": [
            *outputs,
            f"--kafka_config=sasl.password={secret}",
            "--kafka_config=sasl.pasword=x",
        ],
        "bad Kafka value": [
            *outputs,
            "--kafka_config",
            f"sasl.password={secret}",
            "--kafka_config=fetch.wait.max.ms=soon",
        ],
        # (a secret with "=" in it would pass for KEY=VALUE)
        "a Kafka item without a key": [*outputs, "--kafka_config", secret.replace("=", "-")],
        "a storage item without a key": [*outputs, f"--storage_option={secret.replace('=', '-')}"],
        "unknown registry setting": [
            *outputs,
            "--registry=http://127.0.0.1:9",
            f"--registry_config=basic.auth.user.info=u:{secret}",
            "--registry_config=no.such=1",
        ],
        "registry settings that contradict": [
            *outputs,
            "--registry=http://u:pw@127.0.0.1:9",
            f"--registry_config=basic.auth.user.info=u:{secret}",
        ],
        "registry unreachable": [
            *outputs,
            f"--registry_config=basic.auth.user.info=u:{secret}",
            "--registry=http://127.0.0.1:9",
        ],
        "an unset reference": [
            *outputs,
            f"--storage_option=AWS_SECRET_ACCESS_KEY={secret}",
            "--kafka_config=sasl.password=${env:DATAPLANE_TEST_UNSET}",
        ],
        "an output under a file": [
            tweets,
            f"--output={lake / 'a_file' / 't'}",
            f"--dlq={lake / 'd'}",
            f"--s3_secret_access_key={secret}",
        ],
        "Kafka unreachable (exit 3)": [
            "--source=kafka://127.0.0.1:9/tweets",
            "--bounded",
            "--source_timeout_s=0.5",
            f"--output={lake / 'o'}",
            f"--dlq={lake / 'd'}",
            f"--kafka_config=sasl.password={secret}",
            "--kafka_config=security.protocol=SASL_PLAINTEXT",
            "--kafka_config=sasl.mechanism=PLAIN",
            "--kafka_config=sasl.username=bob",
        ],
    }


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(secret=secret_sets().map(lambda s: s["kafka_sasl_password"]))
def test_error_messages_never_show_a_secret(
    secret: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    caplog.set_level(logging.DEBUG)
    lake = tmp_path_factory.mktemp("lake")
    for case, argv in _failing(lake, secret).items():
        caplog.clear()
        code = sentiment.main(argv)
        out, err = capfd.readouterr()
        logged = "\n".join(record.getMessage() for record in caplog.records)
        assert code == (3 if "exit 3" in case else 2), f"{case}: {err}"
        assert err.startswith("error: "), f"{case}: {err}"
        assert "Traceback" not in err, f"{case}: {err}"
        for label, text in (("stderr", err), ("stdout", out), ("logs", logged)):
            assert not leaks(secret, text), f"{case}: the secret shows in {label}: {text}"
