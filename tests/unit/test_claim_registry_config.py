"""README claim: registry client settings via ``--registry_config`` / ``--registry_config_file``.

"registry client settings through `--registry_config` / `--registry_config_file`" are "passed to
confluent-kafka's `SchemaRegistryClient`: basic auth, bearer, TLS"; command-line settings win over
the file's; "Unknown or invalid ... registry settings stop the run before it starts (exit 2,
naming the flag)". The registry here refuses every request without its password.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from beam_pipelines import sentiment
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from schemas.registry import LocalFileRegistry
from tests.unit.secret_leaks import BasicAuthRegistry

PASSWORD = "user:reg-pw-7Qz"
TWEETS = 20


@pytest.fixture
def guarded(registry_url: str) -> Iterator[BasicAuthRegistry]:
    proxy = BasicAuthRegistry(registry_url, PASSWORD)
    yield proxy
    proxy.close()


def _run(tmp_path: Path, registry: str, *flags: str) -> int:
    source = tmp_path / "tweets.parquet"
    if not source.exists():
        tweet = LocalFileRegistry().get("tweet")
        publish(f"file://{source}", generate_tweets(TWEETS, bad_ratio=0.0, schema=tweet))
    return sentiment.main(
        [
            f"--source=file://{source}",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
            "--runner=direct",
            f"--registry={registry}",
            *flags,
        ]
    )


def _rows(tmp_path: Path) -> int:
    return DeltaTable(str(tmp_path / "out")).to_pyarrow_table().num_rows


def test_registry_config_file_settings_reach_the_registry_client(
    tmp_path: Path, guarded: BasicAuthRegistry
) -> None:
    settings = tmp_path / "registry.properties"
    settings.write_text(f"# the registry's credentials\n\nbasic.auth.user.info = {PASSWORD}\n")
    assert _run(tmp_path, guarded.url, f"--registry_config_file={settings}") == 0
    assert _rows(tmp_path) == TWEETS
    assert guarded.by_id > 0 and guarded.refused == 0


def test_registry_config_flags_win_over_the_file(
    tmp_path: Path, guarded: BasicAuthRegistry
) -> None:
    settings = tmp_path / "registry.properties"
    settings.write_text("basic.auth.user.info=user:an-old-password\n")
    code = _run(
        tmp_path,
        guarded.url,
        f"--registry_config_file={settings}",
        f"--registry_config=basic.auth.user.info={PASSWORD}",
    )
    assert code == 0 and _rows(tmp_path) == TWEETS
    assert guarded.by_id > 0 and guarded.refused == 0


@pytest.mark.parametrize("where", ["flag", "file"])
def test_an_unknown_registry_setting_exits_2_before_the_run(
    where: str, tmp_path: Path, guarded: BasicAuthRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "registry.properties"
    settings.write_text("basic.auth.usr.info=user:x\n")
    flag = {
        "flag": "--registry_config=basic.auth.usr.info=user:x",
        "file": f"--registry_config_file={settings}",
    }[where]
    assert _run(tmp_path, guarded.url, flag) == 2
    named = {"flag": "--registry_config:", "file": "--registry_config_file:"}[where]
    assert f"error: {named} Unrecognized properties: basic.auth.usr.info" in capsys.readouterr().err
    assert guarded.by_id == guarded.refused == 0  # nothing was asked: the run never started
    assert not (tmp_path / "out").exists()
