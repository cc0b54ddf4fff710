"""ReadFromKafka takes Beam's spelling too: consumer_config with bootstrap.servers, topics=[...]."""

from __future__ import annotations

from typing import Any

import pytest

from schemas.errors import ConfigError
from transforms.sources.kafka import ReadFromKafka


def test_beams_spelling_reads_one_topic() -> None:
    read = ReadFromKafka(consumer_config={"bootstrap.servers": "127.0.0.1:9"}, topics=["tweets"])
    shown = read.display_data()
    assert (shown["topic"], shown["bootstrap_servers"]) == ("tweets", "127.0.0.1:9")


def test_the_same_servers_twice_are_accepted() -> None:
    read = ReadFromKafka(
        bootstrap_servers="h:1", consumer_config={"bootstrap.servers": "h:1"}, topic="t"
    )
    assert read.display_data()["bootstrap_servers"] == "h:1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"topics": ["a", "b"]},
            r"topics: a read covers exactly one topic, got \['a', 'b'\]: apply one ReadFromKafka",
        ),
        ({"topics": []}, r"topics: a read covers exactly one topic, got \[\]"),
        ({"topics": "tweets"}, "topics: expected a list of topic names, got the string 'tweets'"),
        ({"topic": "a", "topics": ["a"]}, "topics: give topic or topics, not both"),
        ({}, "topic: expected a topic name, got nothing"),
        (
            {"topic": "t", "consumer_config": {"bootstrap.servers": "other:2"}},
            r"consumer_config\['bootstrap.servers'\]: 'other:2' contradicts bootstrap_servers",
        ),
    ],
)
def test_bad_spellings_are_named(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReadFromKafka(**{"bootstrap_servers": "h:1", **args})


def test_no_servers_at_all_is_named() -> None:
    with pytest.raises(ConfigError, match="bootstrap_servers: expected host:port"):
        ReadFromKafka(topics=["t"])
