"""A user's test of a job built from the transforms, with the pytest plugin's fixtures.

The README shows the test below as written: it is how a user tests their own steps.
"""

import json

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from transforms import DecodeAndValidate, ScoreSentiment, read_from_uri

pytestmark = [pytest.mark.integration]


def test_tweets_are_scored_and_bad_ones_dead_lettered(kafka_bootstrap, new_topic, produce):
    topic = new_topic(partitions=1)
    user = {"id": "u1", "handle": "ada"}
    tweet = {
        "id": "1",
        "text": "What a great day!",
        "user": user,
        "created_at": "2026-01-01T00:00:00Z",
    }
    produce(topic, [json.dumps(tweet).encode(), b"{not json"])
    with BeamTestPipeline() as p:
        records = p | read_from_uri(f"kafka://{kafka_bootstrap}/{topic}", bounded=True)
        rows, bad = records | DecodeAndValidate(subject="tweet")
        scored, _ = rows | ScoreSentiment()
        labels = scored | beam.Map(lambda row: (row["id"], row["sentiment_label"]))
        assert_that(labels, equal_to([("1", "positive")]), label="Labels")
        reasons = bad | beam.Map(lambda letter: letter.error_type)
        assert_that(reasons, equal_to(["InvalidJson"]), label="DeadLetters")
