"""README claim: where profiles are read from, in order.

"Profiles are read from `--profiles_file`, else `$DATAPLANE_PROFILES`, else
`./dataplane-profiles.yaml`, else the examples in `beam_pipelines/launch/profiles.yaml` (`local`,
`portable-local`, `flink`, `dataflow-example`)".
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from beam_pipelines import sentiment
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from beam_pipelines.launch.profiles import PACKAGED_PROFILES, expand_profile
from schemas.errors import ConfigError


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no ``$DATAPLANE_PROFILES``."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("DATAPLANE_PROFILES", raising=False)
    return work


def _profiles(path: Path, runner: str) -> Path:
    path.write_text(f"profiles:\n  local:\n    runner: {runner}\n")
    return path


def test_without_any_file_the_packaged_examples_are_used(elsewhere: Path) -> None:
    assert expand_profile(["--profile=local"]) == ["--runner=direct"]
    assert expand_profile(["--profile", "flink"])[0] == "--runner=flink"
    assert expand_profile(["--profile=dataflow-example"])[:2] == [
        "--runner=dataflow",
        "--project=my-gcp-project",
    ]
    with pytest.raises(ConfigError, match="unknown profile 'mine'") as err:
        expand_profile(["--profile=mine"])
    assert str(PACKAGED_PROFILES) in str(err.value)
    assert "dataflow-example, flink, local, portable-local" in str(err.value)


def test_each_file_in_the_order_hides_the_ones_after_it(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _profiles(elsewhere / "dataplane-profiles.yaml", "from-working-directory")
    assert expand_profile(["--profile=local"]) == ["--runner=from-working-directory"]
    with pytest.raises(ConfigError, match="unknown profile 'flink'"):  # not merged
        expand_profile(["--profile=flink"])

    monkeypatch.setenv("DATAPLANE_PROFILES", str(_profiles(tmp_path / "env.yaml", "from-env")))
    assert expand_profile(["--profile=local"]) == ["--runner=from-env"]

    explicit = _profiles(tmp_path / "explicit.yaml", "from-flag")
    assert expand_profile(["--profile=local", f"--profiles_file={explicit}"]) == [
        "--runner=from-flag"
    ]


def test_a_pipeline_run_takes_the_working_directory_profile(
    elsewhere: Path, tmp_path: Path
) -> None:
    (elsewhere / "dataplane-profiles.yaml").write_text(
        "profiles:\n  tiny:\n    runner: direct\n    max_record_bytes: 40\n"
    )
    publish(f"file://{tmp_path}/tweets.jsonl", generate_tweets(6, bad_ratio=0.0))
    code = sentiment.main(
        [
            "--profile=tiny",
            f"--source=file://{tmp_path}/tweets.jsonl",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
        ]
    )
    assert code == 0
    letters = DeltaTable(str(tmp_path / "dlq")).to_pyarrow_table().to_pylist()
    assert Counter(r["error_type"] for r in letters) == {"RecordTooLarge": 6}
