"""The table commands' ``--storage_option`` items: a malformed one is refused, not shown."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runners.cli.tables import storage_from_items
from schemas.errors import ConfigError

secrets = st.text(st.characters(codec="utf-8", exclude_characters="="), min_size=8, max_size=40)


@settings(max_examples=100, deadline=None)
@given(secrets, st.sampled_from(["{}", "={}"]))
def test_a_malformed_storage_option_is_refused_without_showing_it(secret: str, form: str) -> None:
    item = form.format(secret)
    with pytest.raises(ConfigError) as caught:
        storage_from_items([item])
    assert "--storage_option" in str(caught.value)
    assert secret not in str(caught.value)


def test_well_formed_items_are_read() -> None:
    assert storage_from_items(["AWS_REGION=eu-west-1"])["AWS_REGION"] == "eu-west-1"
