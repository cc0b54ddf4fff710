"""Exactly once under faults, against the real broker: resume, offsets, outages, poison, writers."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from beam_pipelines import sentiment
from beam_pipelines.feeds.tweets import generate_tweets
from runners.local.aws import MotoServer
from runners.local.broker import LocalKafkaBroker, s3_broker_storage
from runners.local.process import free_port
from tests.helpers import produce, read_table
from transforms.sinks import ResumeFrom, TableRef

pytestmark = pytest.mark.integration


def _args(source, lake, *extra):
    return [
        f"--source={source}",
        f"--output={lake}/out",
        f"--dlq={lake}/dlq",
        "--bounded",
        "--runner=direct",
        *extra,
    ]


def _cli(source, lake, *extra, timeout=120):
    command = [sys.executable, "-m", "beam_pipelines.sentiment", *_args(source, lake, *extra)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def _all_rows(lake):
    """Rows of the output and dead-letter tables (a run without dead letters makes no table)."""
    tables = [Path(lake) / "out", Path(lake) / "dlq"]
    return [row for t in tables if t.exists() for row in read_table(str(t)).to_pylist()]


def _produce_transactions(bootstrap, topic, batches):
    """Transactional batches; returns {(partition, offset): value}.

    Each commit marker takes an offset, so offsets have gaps. (Aborted transactions
    are left out: the local broker hands aborted records to read_committed consumers.)
    """
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": f"{topic}-tx"})
    producer.init_transactions(10)
    kept, pending = {}, {}

    def delivered(err, message):
        assert err is None
        pending[(str(message.partition()), str(message.offset()))] = message.value()

    messages = iter(generate_tweets(sum(batches), bad_ratio=0.1, seed=11))
    for size in batches:
        producer.begin_transaction()
        pending.clear()
        for n in range(size):
            message = next(messages)
            producer.produce(topic, message.value, partition=n % 2, on_delivery=delivered)
        producer.flush(10)
        producer.commit_transaction(10)
        kept.update(pending)
    return kept


def test_resume_is_exact_across_transaction_markers(kafka_bootstrap, new_topic, tmp_path):
    topic = new_topic(partitions=2)
    committed = _produce_transactions(kafka_bootstrap, topic, [7, 5, 9, 4, 6, 8, 5])
    offsets = sorted(int(o) for p, o in committed if p == "0")
    assert offsets != list(range(offsets[0], offsets[0] + len(offsets)))  # there are gaps
    source = f"kafka://{kafka_bootstrap}/{topic}?group=g-{topic}"
    read_per_run = []
    for _ in range(12):  # micro-batches of 6 records until nothing is left
        summary = sentiment.run(_args(source, tmp_path, "--max_records=6", "--batch_size=4"))
        read_per_run.append(summary.records_in)
        if summary.records_in == 0:
            break
    # Each run resumed exactly where the last one stopped: no record was read twice.
    assert sum(read_per_run) == len(committed) and read_per_run[-1] == 0
    rows = _all_rows(tmp_path)
    assert sorted((r["_partition"], r["_position"]) for r in rows) == sorted(committed)
    for row in rows:
        value = committed[(row["_partition"], row["_position"])]
        if "error_type" in row:
            assert row["value"] == value
        else:
            assert json.loads(value)["id"] == row["id"]
    # The group's offsets follow the tables: the offset after each partition's frontier.
    frontiers = ResumeFrom(
        (TableRef(f"{tmp_path}/out", "sentiment"), TableRef(f"{tmp_path}/dlq", "sentiment-dlq"))
    ).frontiers("kafka", topic)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"g-{topic}"})
    group = consumer.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
    consumer.close()
    last = {p: max(int(o) for q, o in committed if q == p) for p in ("0", "1")}
    assert frontiers == {p: str(o) for p, o in last.items()}
    assert {str(tp.partition): tp.offset for tp in group} == {p: o + 1 for p, o in last.items()}


@pytest.fixture
def open_lake():
    """A lake directory any user may enter and write in (a run as nobody uses it)."""
    path = Path(tempfile.mkdtemp(prefix="dataplane-lake-"))
    path.chmod(0o777)
    yield path
    for below in path.rglob("*"):
        if below.is_dir():
            below.chmod(0o755)
    shutil.rmtree(path)


def _without_write_access():
    """A command prefix that runs without root's power to write anywhere (setpriv)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): a log cannot be made read-only")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def test_no_group_offsets_are_committed_when_the_table_commit_fails(
    kafka_bootstrap, new_topic, open_lake
):
    topic = new_topic(partitions=2)
    tweets = generate_tweets(20, bad_ratio=0.0, seed=11)  # no dead letters: one table
    produce(
        kafka_bootstrap, topic, ((n % 2, m.value, m.timestamp_ms) for n, m in enumerate(tweets))
    )
    # The table's directory takes data files, but its log takes no entry: the storage
    # refuses the commit itself, after the run has read the records and written them.
    table = open_lake / "out"
    (table / "_delta_log").mkdir(parents=True)
    table.chmod(0o777)
    (table / "_delta_log").chmod(0o555)
    source = f"kafka://{kafka_bootstrap}/{topic}?group=g-{topic}"
    command = [sys.executable, "-m", "beam_pipelines.sentiment", *_args(source, open_lake)]
    done = subprocess.run(
        [*_without_write_access(), *command],
        env={**os.environ, "HOME": str(open_lake)},  # a home of its own, as a user has
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    refused = f"{table}/_delta_log/00000000000000000000.json"
    assert "OSError" in done.stderr and "Permission denied" in done.stderr, done.stderr[-2000:]
    assert refused in done.stderr, done.stderr[-2000:]
    data_files = list(table.glob("*.parquet"))
    assert len(data_files) == 1 and pq.read_table(data_files[0]).num_rows == 20  # all read
    assert list((table / "_delta_log").iterdir()) == []  # and nothing committed
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"g-{topic}"})
    group = consumer.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
    consumer.close()
    assert [tp.offset < 0 for tp in group] == [True, True]  # nothing committed to the group


def test_a_broker_that_is_down_fails_fast_with_a_clear_error(tmp_path):
    port = free_port()
    started = time.monotonic()
    done = _cli(f"kafka://127.0.0.1:{port}/tweets", tmp_path, "--source_timeout_s=3")
    assert done.returncode == 3
    assert f"no Kafka broker answered at 127.0.0.1:{port} within 3s" in done.stderr
    assert "--source_timeout_s" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 30


@pytest.fixture
def durable_broker(aws_env):
    """A broker whose log lives in S3 (moto), so its topics survive a restart."""
    with MotoServer() as moto:
        storage = s3_broker_storage(moto.endpoint_url)
        broker = LocalKafkaBroker(storage_engine="s3://tansu/", storage_environment=storage)
        with broker:
            yield broker


def test_a_broker_that_comes_up_within_the_timeout_is_used(durable_broker, tmp_path):
    from tests.holding_proxies import LatePort
    from transforms.sources.kafka_admin import ensure_topic

    ensure_topic(durable_broker.bootstrap_servers, "late", partitions=1)
    producer = Producer({"bootstrap.servers": durable_broker.bootstrap_servers})
    for message in generate_tweets(50, bad_ratio=0.0):
        producer.produce("late", message.value)
    assert producer.flush(10) == 0
    durable_broker.stop()
    # The run's bootstrap address resets connections while the broker is down. Once the
    # run has been refused 60 times (one try of about 1 s is refused some 20 times) and
    # still runs, it is waiting for the broker: only then does the broker come up.
    with LatePort(durable_broker.port) as front:
        source = f"kafka://127.0.0.1:{front.port}/late"
        command = [sys.executable, "-m", "beam_pipelines.sentiment"]
        run = subprocess.Popen(
            [*command, *_args(source, tmp_path, "--source_timeout_s=60")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not front.wait_refused(60, timeout_s=0.1):
                assert run.poll() is None, "the run gave up on a broker that was down"
                assert time.monotonic() < deadline, "the run did not keep trying the broker"
            durable_broker.start()
            front.open()
            _, err = run.communicate(timeout=180)
        finally:
            if run.poll() is None:
                run.kill()
                run.wait()
    assert run.returncode == 0, err[-2000:]
    assert len(_all_rows(tmp_path)) == 50


def _queued(bootstrap, topic, messages):
    """Hands ``messages`` to a producer without waiting for a broker.

    Returns a function that waits for their delivery and returns their (partition,
    offset) keys.
    """
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    keys, failures = [], []

    def delivered(err, message):
        if err is not None:
            failures.append(err)
        else:
            keys.append((str(message.partition()), str(message.offset())))

    for message in messages:
        producer.produce(topic, key=message.key, value=message.value, on_delivery=delivered)

    def delivered_keys():
        assert producer.flush(120) == 0 and not failures, failures[:1]
        return keys

    return delivered_keys


def test_a_broker_restart_mid_run_loses_nothing(durable_broker, tmp_path):
    """A streaming run outlives its broker going away; records produced meanwhile arrive."""
    from bench.streaming import StreamingProcess, TableWatcher, TimedProducer
    from transforms.sources.kafka_admin import ensure_topic

    bootstrap = durable_broker.bootstrap_servers
    ensure_topic(bootstrap, "restarts", partitions=2)
    producer = TimedProducer(bootstrap, "restarts")
    watcher = TableWatcher([str(tmp_path / "out"), str(tmp_path / "dlq")])
    flags = [f for f in _args(f"kafka://{bootstrap}/restarts", tmp_path) if f != "--bounded"]
    run = StreamingProcess("beam_pipelines.sentiment", [*flags, "--max_batch_latency_s=1"])
    run.start()
    try:
        before = producer.send(generate_tweets(200, bad_ratio=0.05, seed=5))
        assert watcher.wait_for(before, timeout_s=120), "the run never got going"
        # Mid-run (its first commits are visible), the broker goes away. Records produced
        # while it is down wait in their producer and reach the run once it is back.
        durable_broker.stop()
        during = _queued(bootstrap, "restarts", generate_tweets(100, bad_ratio=0.05, seed=6))
        durable_broker.start()
        during_keys = during()
        after = producer.send(generate_tweets(100, bad_ratio=0.05, seed=7))
        sent = [*before, *during_keys, *after]
        assert watcher.wait_for(sent, timeout_s=300), "records produced around it are missing"
    finally:
        stopped = run.stop()
    assert stopped.exit_code == 0, stopped.stderr[-2000:]
    rows = _all_rows(tmp_path)
    assert len(sent) == len(set(sent)) == 400
    assert sorted((r["_partition"], r["_position"]) for r in rows) == sorted(sent)  # each once


def test_two_pipelines_writing_one_table_neither_duplicate_nor_lose(
    kafka_bootstrap, new_topic, tmp_path
):
    topic = new_topic(partitions=3)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n, message in enumerate(generate_tweets(2000, bad_ratio=0.05, seed=9)):
        producer.produce(topic, message.value, partition=n % 3)
    assert producer.flush(30) == 0
    args = _args(f"kafka://{kafka_bootstrap}/{topic}", tmp_path, "--batch_size=150")
    command = [sys.executable, "-m", "beam_pipelines.sentiment", *args]
    runs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=180)
        assert run.returncode == 0, err[-2000:]
    rows = _all_rows(tmp_path)
    assert len(rows) == len({r["_record_id"] for r in rows}) == 2000
    log = Path(tmp_path / "out" / "_delta_log")
    assert len(list(log.glob("*.json"))) >= 2


def test_a_poison_record_becomes_a_dead_letter_after_bounded_tries(
    kafka_bootstrap, new_topic, tmp_path, monkeypatch
):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    topic = new_topic(partitions=1)
    messages = list(generate_tweets(40, bad_ratio=0.0, seed=4))
    poison_text = json.loads(messages[17].value)["text"]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for message in messages:
        producer.produce(topic, message.value, partition=0)
    assert producer.flush(10) == 0
    real, tries = SentimentIntensityAnalyzer.polarity_scores, []

    def fails_on_poison(self, text):
        if text == poison_text:
            tries.append(text)
            raise RuntimeError("analyzer crashed")
        return real(self, text)

    monkeypatch.setattr(SentimentIntensityAnalyzer, "polarity_scores", fails_on_poison)
    summary = sentiment.run(_args(f"kafka://{kafka_bootstrap}/{topic}", tmp_path))
    dlq = read_table(f"{tmp_path}/dlq").to_pylist()
    poisoned = [r for r in dlq if r["error_type"] == "PoisonRecord"]
    same_text = sum(json.loads(m.value)["text"] == poison_text for m in messages)
    assert len(poisoned) == same_text and len(tries) == 3 * same_text
    assert "failed 3 attempts; last: RuntimeError: analyzer crashed" in poisoned[0]["message"]
    assert poisoned[0]["stage"] == "sentiment" and poisoned[0]["_position"] == "17"
    assert summary.valid == 40 - same_text == read_table(f"{tmp_path}/out").num_rows


def test_dlq_replay_writes_fixed_letters_once_and_marks_them(
    kafka_bootstrap, new_topic, tmp_path, monkeypatch
):
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    from runners.cli.main import main as dataplane

    topic = new_topic(partitions=2)
    messages = list(generate_tweets(200, bad_ratio=0.05, seed=8))
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n, message in enumerate(messages):
        producer.produce(topic, message.value, partition=n % 2)
    assert producer.flush(10) == 0
    real = SentimentIntensityAnalyzer.polarity_scores
    flaky = {json.loads(m.value)["id"] for m in messages[:60] if m.kind == "tweet"}

    def broken(self, text):  # a featurizer bug that hits some tweets
        if any(text == json.loads(m.value)["text"] for m in messages[:60] if m.kind == "tweet"):
            raise ValueError("bug")
        return real(self, text)

    monkeypatch.setattr(SentimentIntensityAnalyzer, "polarity_scores", broken)
    sentiment.run(_args(f"kafka://{kafka_bootstrap}/{topic}", tmp_path))
    monkeypatch.setattr(SentimentIntensityAnalyzer, "polarity_scores", real)  # the fix
    dlq = read_table(f"{tmp_path}/dlq").to_pylist()
    poisoned = [d for d in dlq if d["error_type"] == "PoisonRecord"]
    others = len(dlq) - len(poisoned)
    assert poisoned and others == 10

    flags = ["--", f"--output={tmp_path}/out", "--runner=direct"]
    replay = ["dlq", "replay", "sentiment", "--from", f"{tmp_path}/dlq"]
    assert dataplane([*replay, *flags]) == 0
    out = read_table(f"{tmp_path}/out").to_pylist()
    assert flaky <= {r["id"] for r in out}  # the fixed letters are in the output now
    assert len(out) == len({r["_record_id"] for r in out}) == 190
    marked = read_table(f"{tmp_path}/dlq").to_pylist()
    outcomes = [r["replay_outcome"] for r in marked]
    assert outcomes.count("written") == len(poisoned)
    assert sum(o.startswith("failed again: ") for o in outcomes) == others
    assert len({r["replay_id"] for r in marked}) == 1 and all(r["replayed_at_ms"] for r in marked)

    # Again: only the letters that still fail are replayed, and nothing is added twice.
    assert dataplane([*replay, *flags]) == 0
    assert read_table(f"{tmp_path}/out").num_rows == 190
    (first,) = {r["replay_id"] for r in marked}
    again = read_table(f"{tmp_path}/dlq").to_pylist()
    assert {r["replay_id"] for r in again if r["replay_outcome"] == "written"} == {first}
    second = {r["replay_id"] for r in again if r["replay_outcome"] != "written"}
    assert len(second) == 1 and first not in second

    # New dead letters still append to the table that now has the replay columns.
    producer.produce(topic, b"{not json", partition=0)
    assert producer.flush(10) == 0
    sentiment.run(_args(f"kafka://{kafka_bootstrap}/{topic}", tmp_path))
    latest = read_table(f"{tmp_path}/dlq").to_pylist()
    assert len(latest) == len(dlq) + 1
    (fresh,) = [r for r in latest if r["replay_id"] is None]
    assert fresh["error_type"] == "InvalidJson" and fresh["replay_outcome"] is None
