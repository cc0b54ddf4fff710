"""``dataplane broker``: a broker for the README's commands, stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = [pytest.mark.integration]

CLI = [sys.executable, "-m", "runners.cli", "broker"]


def _ctrl_c(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, then its output; a broker that does not stop in 30 s is killed (the test
    fails), never left running."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=30)[0] or ""
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise


def _address(first_line: str) -> str:
    return first_line.split(" at ")[1].split(" ")[0]


def test_the_broker_command_serves_until_ctrl_c() -> None:
    process = subprocess.Popen([*CLI, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        address = _address(process.stdout.readline())
        metadata = AdminClient({"bootstrap.servers": address}).list_topics(timeout=10)
        assert metadata.brokers  # a Kafka-protocol broker answers there
    finally:
        out = _ctrl_c(process)
    assert process.returncode == 0 and "broker stopped" in out
    host, port = address.split(":")
    with socket.socket() as probe:
        assert probe.connect_ex((host, int(port))) != 0  # stopped, not left behind


def test_a_port_in_use_fails_fast_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*CLI, "--port", str(port)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: --port: 127.0.0.1:{port} is in use; pick another or 0"


def test_with_its_log_in_s3_topics_survive_a_restart(moto_endpoint: str) -> None:
    import boto3
    from confluent_kafka import Consumer, Producer, TopicPartition

    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket="broker-log")
    environment = {**os.environ, "AWS_ENDPOINT_URL": moto_endpoint}
    command = [*CLI, "--port", "0", "--storage", "s3://broker-log/"]
    values = [f"record {n}".encode() for n in range(20)]
    for run in ("write", "read"):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment)
        try:
            assert process.stdout is not None
            first = process.stdout.readline()
            assert "log in s3://broker-log/" in first
            address = _address(first)
            if run == "write":
                producer = Producer({"bootstrap.servers": address})
                for value in values:
                    producer.produce("kept", value, partition=0)
                assert producer.flush(15) == 0
                continue
            consumer = Consumer(
                {"bootstrap.servers": address, "group.id": "g", "enable.partition.eof": True}
            )
            consumer.assign([TopicPartition("kept", 0, 0)])
            got: list[bytes] = []
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                message = consumer.poll(1.0)
                if message is None:
                    continue
                if message.error():
                    break  # the end of the partition
                got.append(message.value())
            consumer.close()
            assert got == values
        finally:
            _ctrl_c(process)
        assert process.returncode == 0


def test_a_local_directory_is_refused_naming_the_flag(tmp_path) -> None:
    done = subprocess.run(
        [*CLI, "--port", "0", "--storage", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("error: --storage: expected memory, s3://BUCKET/")
