"""The Prometheus endpoint: what progress series become, the server's life, bad ports.

The exposition is parsed back with prometheus_client's own parser; the server is
scraped over HTTP; bad ``--metrics_port`` values are given to the pipeline command
as a user gives them (a subprocess) and must exit 2 naming the flag.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pyarrow as pa
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from beam_pipelines.launch.metrics_http import ProgressCollector, serve_metrics
from schemas.errors import ConfigError
from transforms.progress import COMMIT_SECONDS_BUCKETS, LocalRegistry
from transforms.sinks.commit_metrics import UNATTRIBUTED, note_commit, note_merge
from transforms.sinks.delta_commit import CommitOutcome

ROOT = Path(__file__).resolve().parents[2]


def _labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _exposition(registry: LocalRegistry) -> str:
    collectors = CollectorRegistry(auto_describe=False)
    collectors.register(ProgressCollector(registry))
    return generate_latest(collectors).decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_series_become_prometheus_families_with_conventional_names() -> None:
    registry = LocalRegistry()
    read = _labels({"source": "kafka", "stream": "tweets", "partition": "0"})
    registry.add("records_read", 7, read)
    registry.add("records_read", 2, _labels({"source": "file"}))
    registry.set("lag_records", 11, read)
    registry.set("lag_ms", 2500, _labels({"source": "kinesis", "stream": "s", "partition": "p"}))
    registry.set("watermark_ms", 1_000_000, read)
    registry.add("window_panes", 3, _labels({"timing": "on_time"}))
    registry.add("quality_batches", 1, _labels({"result": "failed"}))
    samples = _samples(_exposition(registry))

    assert samples[("dataplane_records_read_total", read)] == 7
    # A series without a label the family has shows it empty (Prometheus: absent).
    file = _labels({"source": "file", "stream": "", "partition": ""})
    assert samples[("dataplane_records_read_total", file)] == 2
    assert samples[("dataplane_source_lag_records", read)] == 11
    kinesis = _labels({"source": "kinesis", "stream": "s", "partition": "p"})
    assert samples[("dataplane_source_lag_seconds", kinesis)] == 2.5
    assert samples[("dataplane_source_watermark_seconds", read)] == 1000.0
    assert samples[("dataplane_watermark_delay_seconds", ())] > 1.7e9  # now - 1970 + 1000 s
    assert samples[("dataplane_window_panes_total", (("timing", "on_time"),))] == 3
    assert samples[("dataplane_quality_batches_total", (("result", "failed"),))] == 1


def _batch(reasons: list[str], event_ms: list[int]) -> pa.Table:
    return pa.table(
        {
            "_event_time": pa.array(event_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "error_type": reasons,
        }
    )


def test_a_commit_counts_rows_reasons_latency_and_its_duration() -> None:
    import time

    from transforms import progress

    table = f"/lake/{os.getpid()}-{time.monotonic_ns()}"
    labels = (("table", table),)
    now_ms = int(time.time() * 1000)
    before = progress.LOCAL.snapshot()
    batch = _batch(["NotUtf8", "NotUtf8", "InvalidJson"], [now_ms - 3000, now_ms - 3000, now_ms])
    note_commit(table, batch, CommitOutcome(table, 4, 3, 0, 1), 0.02)
    # A retry that found two rows committed already: the new one has no known reason.
    note_commit(table, batch, CommitOutcome(table, 5, 1, 2, 1), 0.03)
    note_commit(table, batch, CommitOutcome(table, None, 0, 3, 1), 0.01)  # nothing new
    samples = _samples(_exposition(progress.LOCAL))

    assert not any(key[1] == labels for key in before.counters)
    assert samples[("dataplane_commits_total", labels)] == 2
    assert samples[("dataplane_rows_committed_total", labels)] == 4
    assert samples[("dataplane_rows_already_committed_total", labels)] == 5
    reasons = {
        dict(key[1])["reason"]: value
        for key, value in samples.items()
        if key[0] == "dataplane_dead_letters_committed_total" and dict(key[1])["table"] == table
    }
    assert reasons == {"NotUtf8": 2, "InvalidJson": 1, UNATTRIBUTED: 1}
    assert samples[("dataplane_commit_duration_seconds_count", labels)] == 3
    assert samples[("dataplane_commit_duration_seconds_sum", labels)] == pytest.approx(0.06)
    assert samples[("dataplane_commit_duration_seconds_bucket", (("le", "0.025"), *labels))] == 2
    assert len(COMMIT_SECONDS_BUCKETS) + 1 == sum(
        1
        for key in samples
        if key[0] == "dataplane_commit_duration_seconds_bucket" and table in str(key)
    )
    # Latency: 6 rows observed (two commits wrote something), four about 3 s old.
    assert samples[("dataplane_commit_latency_seconds_count", labels)] == 6
    assert samples[("dataplane_commit_latency_seconds_bucket", (("le", "1.0"), *labels))] == 2
    assert samples[("dataplane_commit_latency_seconds_bucket", (("le", "10.0"), *labels))] == 6


def test_a_merge_counts_inserted_rows_as_committed_and_updated_ones_apart() -> None:
    import time

    from transforms import progress

    table = f"/lake/merged-{os.getpid()}-{time.monotonic_ns()}"
    labels = (("table", table),)
    note_merge(table, version=0, inserted=5, updated=0, seconds=0.02)
    note_merge(table, version=1, inserted=1, updated=3, seconds=0.04)
    note_merge(table, version=None, inserted=0, updated=0, seconds=0.01)  # nothing changed
    samples = _samples(_exposition(progress.LOCAL))

    assert samples[("dataplane_rows_committed_total", labels)] == 6
    assert samples[("dataplane_rows_updated_total", labels)] == 3
    assert samples[("dataplane_commits_total", labels)] == 2
    assert samples[("dataplane_commit_duration_seconds_count", labels)] == 3


def test_the_server_serves_while_the_block_runs_and_stops_after() -> None:
    registry = LocalRegistry()
    registry.add("commits", 1, _labels({"table": "/lake/t"}))
    with serve_metrics(0, registry=registry) as port:
        assert port is not None and port > 0
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as answer:
            first = _samples(answer.read().decode())
        registry.add("commits", 2, _labels({"table": "/lake/t"}))
        with urllib.request.urlopen(url, timeout=10) as answer:
            second = _samples(answer.read().decode())
    assert first[("dataplane_commits_total", (("table", "/lake/t"),))] == 1
    assert second[("dataplane_commits_total", (("table", "/lake/t"),))] == 3
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)


def test_serving_nothing_without_a_port() -> None:
    with serve_metrics(None) as port:
        assert port is None


def test_a_port_in_use_is_a_config_error_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = pytest.raises(ConfigError, match=rf"^--metrics_port: port {port} is in use")
        with refused, serve_metrics(port):
            pass


def _pipeline(*flags: str) -> subprocess.CompletedProcess[str]:
    lake = Path(tempfile.mkdtemp(prefix="dataplane-test-"))
    data = lake / "in.jsonl"
    data.write_text('{"text": "hi"}\n')
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "beam_pipelines.sentiment",
            f"--source=file://{data}",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            *flags,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=180,
        env={**os.environ, "HOME": tempfile.gettempdir()},
    )


def _assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --metrics_port: "), done.stderr
    for word in words:
        assert word in last, done.stderr


@pytest.mark.parametrize("value", ["-1", "65536", "99999999999", "http", "1.5"])
def test_a_bad_metrics_port_exits_2_naming_the_flag(value: str) -> None:
    _assert_refused(_pipeline(f"--metrics_port={value}"), "0 to 65535", value)


def test_a_metrics_port_in_use_exits_2_naming_the_flag() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        _assert_refused(_pipeline(f"--metrics_port={port}"), "in use")


def test_metrics_for_workers_elsewhere_exit_2_naming_the_flag() -> None:
    with socket.socket() as service:  # something answers where the job service would
        service.bind(("127.0.0.1", 0))
        service.listen()
        endpoint = f"127.0.0.1:{service.getsockname()[1]}"
        done = _pipeline("--metrics_port=0", "--runner=portable", f"--job_endpoint={endpoint}")
    _assert_refused(done, "not in this process")


def test_the_sinks_count_what_lands_in_their_tables(tmp_path: Path) -> None:
    """An append sink and a merge sink, run in this process: the counts equal the tables."""
    import apache_beam as beam
    from deltalake import DeltaTable

    from transforms import progress
    from transforms.sinks import MergeIntoDelta, WriteToDelta

    appended, merged = str(tmp_path / "appended"), str(tmp_path / "merged")
    rows = [
        {
            "_record_id": f"r{i}",
            "_source": "kafka",
            "_stream": "t",
            "_partition": "0",
            "_position": str(i),
            "_event_time_ms": 0,
            "word": w,
        }
        for i, w in enumerate(["a", "b", "c"])
    ]
    schema = pa.schema([("k", pa.string()), ("pane", pa.int64())])
    for panes in ([{"k": "a", "pane": 0}], [{"k": "a", "pane": 1}, {"k": "b", "pane": 0}]):
        with beam.Pipeline() as p:
            _ = (
                p
                | "Rows" >> beam.Create(rows)
                | WriteToDelta(appended, schema=pa.schema([("word", pa.string())]), app_id="a")
            )
            _ = (
                p
                | "Panes" >> beam.Create(panes)
                | MergeIntoDelta(merged, schema=schema, keys=["k"], version_column="pane")
            )

    def counted(name: str, table: str) -> float:
        return progress.LOCAL.counter(name, table=table)

    assert counted("rows_committed", appended) == DeltaTable(appended).to_pyarrow_table().num_rows
    assert counted("rows_already_committed", appended) == 3  # the second run's
    assert counted("commits", appended) == DeltaTable(appended).version() + 1 == 1
    assert counted("rows_committed", merged) == DeltaTable(merged).to_pyarrow_table().num_rows
    assert counted("rows_updated", merged) == 1
    assert counted("commits", merged) == DeltaTable(merged).version() + 1
