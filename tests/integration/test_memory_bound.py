"""A bounded run's memory is bounded by its batch settings, not by the size of its input.

200 MB of large records, of every kind a producer may send (over
``max_record_bytes``, under it but breaking the tweet schema's bounds, and
ordinary tweets) go through ``python -m beam_pipelines.sentiment --bounded`` in a
child process, whose peak RSS is read from ``ru_maxrss`` once it has exited.
Before the fixes this peaked at 1.7 GiB: the in-process runner kept every dead
letter of the run in a Flatten's buffer, and a batch run's sinks grouped all
their rows before the first commit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Peak RSS allowed for the run: the process's own footprint (about 300 MiB with
# Beam, Arrow and delta-rs loaded) and a few batches of at most 32 MiB in flight.
BOUND_MIB = 900
# Runs the command in argv as its only child and prints that child's peak RSS
# (this process's RUSAGE_CHILDREN holds nothing else; pytest's would hold every
# child the session has waited for).
_MEASURE = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:]).returncode; "
    "print('maxrss_kib=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
    "sys.exit(code)"
)
KINDS = (
    ("RecordTooLarge", 3_000_000),  # over the 1 MiB max_record_bytes
    ("SchemaViolation", 900_000),  # a URL far over the schema's 2,048 characters
    (None, 300),  # an ordinary tweet
)


def _tweet(number: int, url_chars: int) -> bytes:
    return json.dumps(
        {
            "id": str(number),
            "text": "a fine day at the lake",
            "created_at": "2024-01-01T00:00:00Z",
            "user": {"id": "u", "handle": "h"},
            "urls": ["x" * url_chars],
        }
    ).encode()


def test_peak_rss_of_a_bounded_run_over_200_mb_stays_under_the_bound(
    kafka_bootstrap, new_topic, tmp_path
):
    topic = new_topic(partitions=3)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "message.max.bytes": 8_000_000, "linger.ms": 20}
    )
    produced, expected = 0, {"RecordTooLarge": 0, "SchemaViolation": 0, None: 0}
    number = 0
    while produced < 200_000_000:
        kind, size = KINDS[number % len(KINDS)]
        value = _tweet(number, size)
        producer.produce(topic, value=value, partition=number % 3)
        producer.poll(0)
        produced += len(value)
        expected[kind] += 1
        number += 1
    assert producer.flush(60) == 0

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _MEASURE,
            sys.executable,
            "-m",
            "beam_pipelines.sentiment",
            f"--source=kafka://{kafka_bootstrap}/{topic}",
            f"--output={tmp_path}/out",
            f"--dlq={tmp_path}/dlq",
            "--bounded",
            "--runner=direct",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    peak_mib = int(done.stdout.rsplit("maxrss_kib=", 1)[1]) / 1024

    letters = DeltaTable(f"{tmp_path}/dlq").to_pyarrow_table(columns=["error_type"])
    reasons = letters.column("error_type").to_pylist()
    assert reasons.count("RecordTooLarge") == expected["RecordTooLarge"]
    assert reasons.count("SchemaViolation") == expected["SchemaViolation"]
    assert DeltaTable(f"{tmp_path}/out").to_pyarrow_table().num_rows == expected[None]
    assert peak_mib <= BOUND_MIB, f"peak RSS {peak_mib:.0f} MiB for {produced / 1e6:.0f} MB"
