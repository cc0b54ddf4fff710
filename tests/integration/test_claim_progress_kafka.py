"""README claim: the progress line shows "lag per partition or shard, and the output watermark
(the lowest of the sources')", here from a real Kafka read: the readers' own gauges.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from beam_pipelines import sentiment
from beam_pipelines.feeds.tweets import generate_tweets
from beam_pipelines.launch.summary import ProgressMeter
from tests.helpers import produce

pytestmark = pytest.mark.integration

T0 = 1_793_491_200_000  # 2026-11-01T00:00:00Z


def test_the_line_shows_each_partitions_lag_and_the_lowest_watermark_of_a_kafka_read(
    kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic(partitions=2)
    tweets = [m.value for m in generate_tweets(30, bad_ratio=0.0, seed=6)]
    # Partition 0's records are stamped an hour after partition 1's.
    stamped = [(n % 2, v, T0 + (3_600_000 if n % 2 == 0 else 0) + n) for n, v in enumerate(tweets)]
    produce(kafka_bootstrap, topic, stamped)
    meter = ProgressMeter({"output": str(tmp_path / "out")})
    sentiment.run(
        [
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
            "--max_records=20",  # 10 of each partition's 15: 5 left in each
            "--runner=direct",
        ]
    )
    line = meter.line()
    assert "· 20 records read (" in line and "rows committed: output 20" in line
    assert f"lag kafka {topic}[0] 5 records, kafka {topic}[1] 5 records" in line
    # Partition 1's watermark (its records are an hour older) is the line's, not partition 0's.
    assert " · watermark 2026-11-01T00:00:" in line
