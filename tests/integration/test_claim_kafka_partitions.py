"""README claim: the ``partitions=`` parameter of a ``kafka://`` source.

"`kafka://HOST:PORT[,HOST:PORT]/TOPIC[?...&partitions=0,1]`": only those partitions are read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from beam_pipelines import sentiment
from beam_pipelines.feeds.tweets import generate_tweets
from tests.helpers import produce, read_table

pytestmark = pytest.mark.integration


def _topic_with_tweets(kafka_bootstrap: str, new_topic: Callable[..., str]) -> str:
    topic = new_topic(partitions=3)
    tweets = [m.value for m in generate_tweets(30, bad_ratio=0.0, seed=3)]
    produce(kafka_bootstrap, topic, ((n % 3, value, 0) for n, value in enumerate(tweets)))
    return topic


def test_only_the_listed_partitions_are_read(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = _topic_with_tweets(kafka_bootstrap, new_topic)
    summary = sentiment.run(
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}?partitions=0,2",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
            "--bounded",
            "--runner=direct",
        ]
    )
    rows = read_table(str(tmp_path / "out")).to_pylist()
    assert Counter(r["_partition"] for r in rows) == {"0": 10, "2": 10}
    assert summary.valid == 20


def test_a_partition_the_topic_lacks_stops_the_run_naming_it(
    kafka_bootstrap: str,
    new_topic: Callable[..., str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = _topic_with_tweets(kafka_bootstrap, new_topic)
    code = sentiment.main(
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}?partitions=1,7",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
            "--bounded",
            "--runner=direct",
        ]
    )
    assert code != 0
    assert "no partitions [7]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
