"""Flags checked before Beam: hyphen spellings read as the flag, anything unknown refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

import beam_pipelines.sentiment  # noqa: F401  (its flags count as known)
from beam_pipelines.launch.flags import checked_flags, known_flags
from schemas.errors import ConfigError

KNOWN = sorted(known_flags())
WITH_UNDERSCORES = [flag for flag in KNOWN if "_" in flag[2:]]


@given(flag=st.sampled_from(WITH_UNDERSCORES), value=st.text(min_size=1).map(lambda v: "=" + v))
def test_a_hyphenated_spelling_reads_as_the_flag(flag: str, value: str) -> None:
    hyphenated = "--" + flag[2:].replace("_", "-")
    try:
        expected = checked_flags([flag + value])
    except ConfigError as err:  # a value this flag does not take: refused the same way
        with pytest.raises(ConfigError, match=re.escape(str(err))):
            checked_flags([hyphenated + value])
    else:
        assert checked_flags([hyphenated + value]) == expected == [flag + value]


@given(
    name=st.from_regex(r"--[a-z][a-z0-9_-]{2,20}", fullmatch=True),
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=8, max_size=20),
)
def test_an_unknown_flag_is_refused_by_name_without_its_value(name: str, secret: str) -> None:
    if name in KNOWN or "--" + name[2:].replace("-", "_") in KNOWN:
        return
    with pytest.raises(ConfigError, match=f"^{name}: no such flag") as raised:
        checked_flags([f"{name}=s3cr3t{secret}", "--runner=direct"])
    assert secret not in str(raised.value)


@given(value=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=6).map("Q7{}".format))
def test_a_bad_value_names_the_flag_and_not_the_value(value: str) -> None:
    for flag in ("--direct_running_mode", "--max_num_workers"):
        with pytest.raises(ConfigError, match=f"^{flag}: expected ") as raised:
            checked_flags([f"{flag}={value}"])
        assert value not in str(raised.value)


def test_a_misspelt_flag_names_the_closest_one() -> None:
    with pytest.raises(ConfigError, match=r"--bach_size: no such flag; did you mean --batch_size"):
        checked_flags(["--bach_size", "100"])


def test_an_argument_that_follows_no_flag_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError, match="an argument of 7 characters follows no flag") as raised:
        checked_flags(["--runner=direct", "hunter2"])
    assert "hunter2" not in str(raised.value)


def test_known_flags_and_their_values_pass_unchanged() -> None:
    argv = ["--runner", "direct", "--batch_size=10", "--kafka_config", "sasl.password=x", "--"]
    assert checked_flags(argv) == argv
