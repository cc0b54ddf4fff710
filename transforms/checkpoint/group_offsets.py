"""Consumer-group offsets that follow the Delta commits, so lag tools show the truth."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from apache_beam.metrics import Metrics
from confluent_kafka import Consumer, KafkaException, TopicPartition

from schemas.secrets import redact_text
from transforms.checkpoint.frontier import Checkpoint
from transforms.failpoints import failpoint

__all__ = ["CommitGroupOffsets"]

_LOG = logging.getLogger(__name__)


class CommitGroupOffsets:
    """Commits a topic's consumer-group offsets up to what a sink has committed.

    Called by a Delta sink after each commit with the checkpoint it recorded: each
    partition's group offset becomes the offset after its committed frontier, never
    earlier (lag tools such as ``kafka-consumer-groups`` then count only what is
    not yet in the table). Offsets only move forward. A broker that cannot be
    reached is logged and counted, not raised: the rows are already safe, and the
    table log, not the group, is what the pipeline resumes from.

    Args:
        config: the reader's consumer config (``bootstrap.servers``, ``group.id``, ...).
        topic: the topic whose partitions to commit.
        timeout_s: how long one look-up of the current offsets may take.

    Example:
        >>> hook = CommitGroupOffsets({"bootstrap.servers": "127.0.0.1:9", "group.id": "g"}, "t")
        >>> hook.commit(Checkpoint())  # nothing committed yet: nothing to do, no connection made
        >>> hook.close()  # the sink's worker does this at teardown
    """

    def __init__(self, config: Mapping[str, Any], topic: str, timeout_s: float = 5.0) -> None:
        self._config, self._topic, self._timeout_s = dict(config), topic, timeout_s
        self._consumer: Consumer | None = None
        self._failures = Metrics.counter("dataplane.kafka", "group_offset_commit_failures")
        self._commits = Metrics.counter("dataplane.kafka", "group_offset_commits")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_consumer": None}

    def commit(self, checkpoint: Checkpoint) -> None:
        """Moves the group's offsets forward to just after ``checkpoint``'s frontiers."""
        wanted = {
            int(partition): int(p.frontier) + 1
            for (source, stream, partition), p in checkpoint.partitions.items()
            if source == "kafka" and stream == self._topic and p.frontier is not None
        }
        if not wanted:
            return
        try:
            self._commit_forward(wanted)
        except KafkaException as err:
            self._failures.inc()
            _LOG.warning(
                "could not commit group offsets of %s: %s",
                self._topic,
                redact_text(str(err), self._config),
            )

    def close(self) -> None:
        """Closes the consumer the commits opened (a later call opens a new one)."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.close()

    def _commit_forward(self, wanted: dict[int, int]) -> None:
        if self._consumer is None:
            self._consumer = Consumer({**self._config, "enable.auto.commit": False})
        current = self._consumer.committed(
            [TopicPartition(self._topic, p) for p in wanted], timeout=self._timeout_s
        )
        ahead = [
            TopicPartition(self._topic, tp.partition, wanted[tp.partition])
            for tp in current
            if wanted[tp.partition] > tp.offset
        ]
        if ahead:
            failpoint("group_offsets")  # fault trials kill here: see transforms.failpoints
            self._consumer.commit(offsets=ahead, asynchronous=False)
            self._commits.inc()
