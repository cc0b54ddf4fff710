"""``dataplane broker``: a broker for the README's commands, stopped by Ctrl-C."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
from confluent_kafka.admin import AdminClient

pytestmark = [pytest.mark.integration]

CLI = [sys.executable, "-m", "runners.cli", "broker"]


def test_the_broker_command_serves_until_ctrl_c() -> None:
    process = subprocess.Popen([*CLI, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        address = first.split(" at ")[1].split(";")[0]
        metadata = AdminClient({"bootstrap.servers": address}).list_topics(timeout=10)
        assert metadata.brokers  # a Kafka-protocol broker answers there
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
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
