"""Hiding a secret changes nothing about the value used: it round-trips through every path."""

from __future__ import annotations

import copy
import pickle
import string
from pathlib import Path

import pytest
from apache_beam.internal import pickler
from apache_beam.options.pipeline_options import PipelineOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_pipelines.launch.options import (
    RegistryOptions,
    SourceOptions,
    kafka_settings,
    open_registry_from,
    shield_argv,
    storage_options_from,
)
from schemas.secrets import REDACTED, conceal, is_secret_key

# Anything a flag can hold, "${" only escaped as "$${" (a literal "${"); mixed classes,
# so that no flag name or other text passes for the value.
VALUES = st.text(
    string.ascii_letters + string.digits + string.punctuation + " ", min_size=8, max_size=40
).filter(
    lambda v: (
        v == v.strip()
        and "${" not in v.replace("$${", "")
        and any(c.isdigit() for c in v)
        and any(c.isupper() for c in v)
        and any(c.islower() for c in v)
    )
)


def _meant(value: str) -> str:
    return value.replace("$${", "${")


@settings(max_examples=50, deadline=None)
@given(value=VALUES)
def test_a_concealed_value_is_the_value_and_pickles_without_it(value: str) -> None:
    hidden = conceal(value)
    assert hidden == _meant(value) and repr(hidden) == repr(REDACTED)
    for dumped in (pickle.dumps(hidden), pickler.dumps({"k": hidden})):
        assert _meant(value).encode() not in dumped
    assert pickle.loads(pickle.dumps(hidden)) == _meant(value)
    assert pickler.loads(pickler.dumps({"k": hidden}))["k"] == _meant(value)
    assert copy.deepcopy(hidden) == _meant(value)


@settings(max_examples=50, deadline=None)
@given(value=VALUES, inline=st.booleans())
def test_each_flag_hands_the_pipeline_the_value_given(value: str, inline: bool) -> None:
    argv = shield_argv(
        [
            *(["--kafka_config", f"sasl.password={value}"] if inline else []),
            *([] if inline else [f"--kafka_config=sasl.password={value}"]),
            f"--storage_option=AWS_SECRET_ACCESS_KEY={value}",
            "--s3_session_token",
            value,
            f"--registry_config=bearer.auth.token={value}",
        ]
    )
    assert not any(_meant(value) in arg for arg in argv)
    options = PipelineOptions(argv)
    assert kafka_settings(options.view_as(SourceOptions))["sasl.password"] == _meant(value)
    storage = storage_options_from(options) or {}
    assert storage["AWS_SECRET_ACCESS_KEY"] == storage["AWS_SESSION_TOKEN"] == _meant(value)
    registry = options.view_as(RegistryOptions).registry_config
    assert registry == [argv[-1].split("=", 1)[1]] and "dataplane-secret" in registry[0]


def test_secret_keys_of_every_carrier() -> None:
    secret = [
        "sasl.password",
        "ssl.key.password",
        "sasl.oauthbearer.client.secret",
        "sasl.jaas.config",
        "basic.auth.user.info",
        "bearer.auth.token",
        "AWS_SECRET_ACCESS_KEY",
        "aws_session_token",
        "GOOGLE_SERVICE_ACCOUNT_KEY",
        "google_application_credentials",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "azure_storage_sas_key",
        "azure_storage_client_secret",
        "azure_storage_connection_string",
    ]
    shown = ["sasl.username", "AWS_ACCESS_KEY_ID", "AWS_REGION", "bootstrap.servers", "url"]
    assert all(map(is_secret_key, secret)) and not any(map(is_secret_key, shown))


def test_a_registry_url_password_moves_out_of_the_url(
    registry_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry client's HTTP library logs each request's URL: no password may be in it."""
    host = registry_url.split("://", 1)[1]
    monkeypatch.setenv("DATAPLANE_TEST_REGISTRY_PASSWORD", "pw-Xy:Z9!")
    for url, user_info, travels_as in [
        (f"http://bob:p%40ss-W0rd@{host}", "bob:p@ss-W0rd", "${dataplane-secret:"),
        (
            f"http://127.0.0.1:9,http://bob:${{env:DATAPLANE_TEST_REGISTRY_PASSWORD}}@{host}",
            "bob:pw-Xy:Z9!",
            "bob:${env:DATAPLANE_TEST_REGISTRY_PASSWORD}",
        ),
    ]:
        registry = open_registry_from(RegistryOptions(shield_argv([f"--registry={url}"])))
        config = registry._config  # type: ignore[attr-defined]
        assert "@" not in config["url"] and config["basic.auth.user.info"] == user_info
        assert config["basic.auth.user.info"].template.startswith(travels_as)
        assert registry.get("tweet").subject == "tweet"


def test_a_local_registry_may_be_a_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATAPLANE_TEST_SCHEMAS", str(Path(__file__).parents[2] / "schemas"))
    options = RegistryOptions(["--registry=${env:DATAPLANE_TEST_SCHEMAS}"])
    assert "tweet" in open_registry_from(options).subjects()
