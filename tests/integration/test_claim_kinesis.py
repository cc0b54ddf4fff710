"""README claims about the Kinesis source: paced GetRecords, iterator renewal, the
``AT_TIMESTAMP`` start and the start-up timeout.

"Kinesis | our SDF over shard sets: parents before children, paced GetRecords, throttling
backoff, iterator renewal"; "`kinesis://STREAM[?region=R&endpoint=URL&start=trim_horizon|latest|
at_timestamp&start_timestamp_ms=MS]`"; "`--source_timeout_s` (default 30) bounds the wait for a
broker or stream at start. After it, the run exits with status 3 [...]. A broker that comes back
within it is used."

Everything runs against moto's Kinesis server. A small HTTP proxy in front of it records each
call and, where a test says so, answers one the way Kinesis does when it fails.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from beam_pipelines import sentiment
from beam_pipelines.feeds.tweets import generate_tweets
from runners.local.process import free_port
from tests.helpers import collect, read_table
from transforms.sources.kinesis import ReadFromKinesis
from transforms.sources.uri import read_from_uri

pytestmark = pytest.mark.integration


@dataclass
class _Call:
    at: float
    operation: str
    body: dict[str, Any]


@dataclass
class _Faults:
    """Which calls the proxy fails: GetRecords calls by number (1 = the first), and how many
    requests it drops at first (the connection closes without an answer: a server away)."""

    expire_get_records: set[int] = field(default_factory=set)
    drop_first: int = 0


class KinesisProxy:
    """Forwards Kinesis JSON calls to ``upstream``, records them and injects ``faults``."""

    def __init__(self, upstream: str, faults: _Faults | None = None) -> None:
        self.calls: list[_Call] = []
        self.dropped = 0
        self.faults = faults or _Faults()
        self._lock = threading.Lock()
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
                verdict = proxy._verdict(operation, body)
                if verdict == "drop":
                    self.close_connection = True
                    return
                if verdict == "expire":
                    self._reply(400, {"__type": "ExpiredIteratorException", "message": "expired"})
                    return
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                connection.request("POST", self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _verdict(self, operation: str, body: bytes) -> str:
        with self._lock:
            if self.dropped < self.faults.drop_first:
                self.dropped += 1
                return "drop"
            self.calls.append(_Call(time.monotonic(), operation, json.loads(body or b"{}")))
            number = sum(c.operation == "GetRecords" for c in self.calls)
            if operation == "GetRecords" and number in self.faults.expire_get_records:
                return "expire"
            return "forward"

    def of(self, operation: str) -> list[_Call]:
        with self._lock:
            return [c for c in self.calls if c.operation == operation]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[KinesisProxy]:
    proxy = KinesisProxy(moto_endpoint)
    yield proxy
    proxy.close()


def _client(endpoint: str) -> Any:
    return boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")


def _stream(endpoint: str, shards: int = 1) -> str:
    client = _client(endpoint)
    name = f"claims-{uuid.uuid4().hex[:10]}"
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100}
    )
    return name


def _put(endpoint: str, stream: str, values: list[bytes]) -> None:
    client = _client(endpoint)
    for start in range(0, len(values), 500):
        chunk = values[start : start + 500]
        answer = client.put_records(
            StreamName=stream,
            Records=[{"Data": v, "PartitionKey": f"k{start + n}"} for n, v in enumerate(chunk)],
        )
        assert answer["FailedRecordCount"] == 0


def test_get_records_is_paced_within_five_calls_per_second_per_shard(
    moto_endpoint: str, proxy: KinesisProxy
) -> None:
    stream = _stream(moto_endpoint)
    values = [f"v{n}".encode() for n in range(3500)]  # four GetRecords of at most 1,000
    _put(moto_endpoint, stream, values)
    (records,) = collect(
        lambda p: p | ReadFromKinesis(stream, endpoint_url=proxy.url, bounded=True)
    )
    assert sorted(r.value for r in records) == sorted(values)
    calls = [c.at for c in proxy.of("GetRecords")]
    assert len(calls) >= 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert min(gaps) >= 0.19, gaps  # Kinesis allows 5 GetRecords per second per shard


def test_an_expired_iterator_is_renewed_after_the_last_record_handed_on(
    moto_endpoint: str, proxy: KinesisProxy
) -> None:
    stream = _stream(moto_endpoint)
    values = [f"v{n}".encode() for n in range(2500)]
    _put(moto_endpoint, stream, values)
    proxy.faults.expire_get_records = {2}  # after the first 1,000 records were handed on
    (records,) = collect(
        lambda p: p | ReadFromKinesis(stream, endpoint_url=proxy.url, bounded=True)
    )
    assert sorted(r.value for r in records) == sorted(values)  # nothing lost, nothing twice
    first_thousand = sorted(records, key=lambda r: int(r.position))[999]
    renewals = [
        c.body
        for c in proxy.of("GetShardIterator")
        if c.body.get("ShardIteratorType") == "AFTER_SEQUENCE_NUMBER"
    ]
    assert [r["StartingSequenceNumber"] for r in renewals] == [first_thousand.position]


def test_at_timestamp_starts_at_the_first_record_that_arrived_then(moto_endpoint: str) -> None:
    stream = _stream(moto_endpoint, shards=2)
    before = [f"before-{n}".encode() for n in range(20)]
    _put(moto_endpoint, stream, before)
    uri = f"kinesis://{stream}?region=us-east-1&endpoint={moto_endpoint}"
    (first,) = collect(lambda p: p | read_from_uri(uri, bounded=True))
    assert sorted(r.value for r in first) == sorted(before)
    last_arrival = max(r.event_time_ms for r in first)
    start_ms = last_arrival + 20
    deadline = time.monotonic() + 10
    while time.time() * 1000 <= start_ms + 20:  # the clock passes the start with a margin
        assert time.monotonic() < deadline
        time.sleep(0.005)
    after = [f"after-{n}".encode() for n in range(20)]
    _put(moto_endpoint, stream, after)
    at = f"{uri}&start=at_timestamp&start_timestamp_ms={start_ms}"
    (records,) = collect(lambda p: p | read_from_uri(at, bounded=True))
    assert sorted(r.value for r in records) == sorted(after)


def _sentiment(tmp_path: Path, stream: str, endpoint: str, *flags: str) -> int:
    return sentiment.main(
        [
            f"--source=kinesis://{stream}?region=us-east-1&endpoint={endpoint}",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
            "--bounded",
            "--runner=direct",
            *flags,
        ]
    )


def test_a_stream_that_does_not_answer_within_the_timeout_exits_3(
    tmp_path: Path, aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    assert _sentiment(tmp_path, "tweets", nobody, "--source_timeout_s=1") == 3
    error = capsys.readouterr().err
    assert "Kinesis stream 'tweets' did not answer within 1s (--source_timeout_s)" in error
    assert not (tmp_path / "out").exists()


def test_a_stream_that_answers_within_the_timeout_is_used(
    moto_endpoint: str, proxy: KinesisProxy, tmp_path: Path
) -> None:
    stream = _stream(moto_endpoint)
    tweets = [m.value for m in generate_tweets(30, bad_ratio=0.0, seed=9)]
    _put(moto_endpoint, stream, tweets)
    # The first requests find nobody: more than one DescribeStreamSummary call's own retries.
    proxy.faults.drop_first = 6
    assert _sentiment(tmp_path, stream, proxy.url, "--source_timeout_s=60") == 0
    assert proxy.dropped == 6
    assert read_table(str(tmp_path / "out")).num_rows == 30
