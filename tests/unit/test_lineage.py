"""OpenLineage events of pipeline runs, read back from the file transport or an HTTP receiver.

Each run is a user's run (``main(argv)`` / ``run(argv)``) on files; the events are
checked against the spec's required fields (the client package ships no JSON
schema), and what they say against the registry and the Delta tables themselves.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from beam_pipelines import sentiment, telemetry
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.telemetry import generate_telemetry
from beam_pipelines.feeds.tweets import generate_tweets
from beam_pipelines.launch.lineage import lineage_client
from beam_pipelines.launch.lineage_datasets import source_dataset, table_dataset
from schemas.errors import ConfigError
from schemas.registry import LocalFileRegistry
from tests.unit.secret_leaks import (
    Exposures,
    assert_hidden,
    carried,
    leaks,
    secret_flags,
    secret_sets,
)
from transforms.quality import PACKAGED_SUITES, read_suite

RUN_STATES = {"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"}


@pytest.fixture(autouse=True)
def _openlineage_environment() -> Iterator[None]:
    """Restores OPENLINEAGE* variables: the client writes some (it aliases OPENLINEAGE_URL)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("OPENLINEAGE")}
    yield
    for name in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        del os.environ[name]
    os.environ.update(saved)


def assert_well_formed(event: dict[str, Any]) -> None:
    """The OpenLineage 2-0-2 RunEvent's required fields, their types and every facet's."""
    assert event["eventType"] in RUN_STATES
    datetime.fromisoformat(event["eventTime"])
    assert re.match(r"^[a-z][a-z0-9+.-]*:", event["producer"]), event["producer"]
    assert event["schemaURL"].startswith("https://openlineage.io/spec/")
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"] and event["job"]["name"]
    facet_groups = [event["run"].get("facets", {}), event["job"].get("facets", {})]
    for dataset in [*event.get("inputs", []), *event.get("outputs", [])]:
        assert isinstance(dataset["namespace"], str) and dataset["namespace"]
        assert isinstance(dataset["name"], str) and dataset["name"]
        facet_groups += [dataset.get(key, {}) for key in ("facets", "inputFacets", "outputFacets")]
    for facets in facet_groups:
        for name, facet in facets.items():
            assert facet["_producer"] and facet["_schemaURL"].startswith("https://"), name


def events_of(path: Path) -> list[dict[str, Any]]:
    events = [json.loads(line) for line in path.read_text().splitlines() if line]
    for event in events:
        assert_well_formed(event)
    return events


def _by_name(event: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in event[key]}


def _field_names(facet: dict[str, Any]) -> list[str]:
    return [f["name"] for f in facet["fields"]]


def _sentiment(lake: Path, *extra: str) -> int:
    return sentiment.main(
        [
            f"--source=file://{lake}/tweets.jsonl",
            f"--output={lake / 'tweets'}",
            f"--dlq={lake / 'dead_letters'}",
            "--runner=direct",
            *extra,
        ]
    )


def test_a_batch_run_sends_start_then_complete_naming_its_topic_tables_and_schemas(
    tmp_path: Path,
) -> None:
    written = publish(f"file://{tmp_path}/tweets.jsonl", generate_tweets(60, bad_ratio=0.1, seed=3))
    events_file = tmp_path / "events" / "lineage.jsonl"
    events_file.parent.mkdir()

    assert _sentiment(tmp_path, f"--lineage=file:{events_file}") == 0
    start, complete = events_of(events_file)

    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert start["job"] == complete["job"]
    assert (start["job"]["namespace"], start["job"]["name"]) == ("dataplane", "sentiment")
    assert start["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    # The input, named per the spec, with the fields of the registry subject it is checked against.
    (source,) = complete["inputs"]
    assert (source["namespace"], source["name"]) == ("file", str(tmp_path / "tweets.jsonl"))
    subject = LocalFileRegistry().latest("tweet")
    assert _field_names(source["facets"]["schema"]) == list(subject.schema["properties"])
    assert "subject tweet version 1" in source["facets"]["documentation"]["description"]
    # Every output, the dead-letter table too, with its Delta schema and what the run wrote.
    outputs = _by_name(complete, "outputs")
    assert set(outputs) == {str(tmp_path / "tweets"), str(tmp_path / "dead_letters")}
    for name, dataset in outputs.items():
        table = DeltaTable(name)
        assert dataset["namespace"] == "file"
        assert _field_names(dataset["facets"]["schema"]) == [f.name for f in table.schema().fields]
        assert dataset["facets"]["version"]["datasetVersion"] == str(table.version())
        statistics = dataset["outputFacets"]["outputStatistics"]
        sizes = pa.table(table.get_add_actions(flatten=True)).column("size_bytes").to_pylist()
        assert statistics["rowCount"] == table.to_pyarrow_table().num_rows
        assert statistics["size"] == sum(sizes)
    assert sum(d["outputFacets"]["outputStatistics"]["rowCount"] for d in outputs.values()) == sum(
        n for kind, n in written.items() if not kind.startswith("skipped_")
    )
    # START saw no table yet: named, without a schema.
    assert all(not d["facets"] for d in start["outputs"])

    # A second run of the same input writes nothing new, and says so.
    events_file.unlink()
    assert _sentiment(tmp_path, f"--lineage=file:{events_file}") == 0
    start_again, complete_again = events_of(events_file)
    assert start_again["run"]["runId"] != start["run"]["runId"]
    assert {
        d["outputFacets"]["outputStatistics"]["rowCount"] for d in complete_again["outputs"]
    } == {0}
    assert all(d["facets"]["schema"]["fields"] for d in start_again["outputs"])


def test_a_failing_run_sends_fail_with_the_error(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    events_file = tmp_path / "lineage.jsonl"

    with pytest.raises(Exception, match=r"(?i)parquet"):
        sentiment.run(
            [
                f"--source=file://{tmp_path}/broken.parquet",
                f"--output={tmp_path / 'tweets'}",
                f"--dlq={tmp_path / 'dead_letters'}",
                "--runner=direct",
                f"--lineage=file:{events_file}",
            ]
        )
    start, fail = events_of(events_file)
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    assert fail["run"]["runId"] == start["run"]["runId"]
    error = fail["run"]["facets"]["errorMessage"]
    assert error["programmingLanguage"] == "python" and "arquet" in error["message"]


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    """A local HTTP lineage endpoint (as Marquez's POST /api/v1/lineage)."""
    received: list[tuple[str, dict[str, Any]]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("configured_by", ["flag", "OPENLINEAGE_URL"])
def test_an_http_lineage_service_receives_the_run(
    configured_by: str,
    tmp_path: Path,
    receiver: tuple[str, list[tuple[str, dict[str, Any]]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, received = receiver
    publish(f"file://{tmp_path}/tweets.jsonl", generate_tweets(20, seed=4))
    if configured_by == "flag":
        code = _sentiment(tmp_path, f"--lineage={url}", "--lineage_namespace=team-a")
    else:
        monkeypatch.setenv("OPENLINEAGE_URL", url)
        monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "team-a")
        code = _sentiment(tmp_path)

    assert code == 0
    assert [path for path, _ in received] == ["/api/v1/lineage"] * 2
    events = [event for _, event in received]
    for event in events:
        assert_well_formed(event)
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    assert {e["job"]["namespace"] for e in events} == {"team-a"}


def test_a_lineage_service_that_is_down_never_stops_a_run(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    publish(f"file://{tmp_path}/tweets.jsonl", generate_tweets(20, seed=6))
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"

    assert _sentiment(tmp_path, f"--lineage={url}") == 0

    assert DeltaTable(str(tmp_path / "tweets")).to_pyarrow_table().num_rows > 0
    err = capfd.readouterr().err
    assert err.count("warning: OpenLineage event not sent") == 1, err


def test_no_configuration_sends_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(name)
    assert lineage_client(None) is None
    (tmp_path / "openlineage.yml").write_text(
        f"transport:\n  type: file\n  log_file_path: {tmp_path / 'events.jsonl'}\n  append: true\n"
    )
    assert lineage_client(None) is not None  # the client's own openlineage.yml
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    assert lineage_client(None) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("kafka://127.0.0.1:9092/lineage", "expected http(s)://"),
        ("file:", "no path"),
        ("http://user:Xy7-pw-Q2@127.0.0.1:5000", "API_KEY"),
    ],
)
def test_a_bad_lineage_target_is_a_config_error_naming_the_flag(value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=rf"^--lineage: .*{re.escape(words)}") as caught:
        lineage_client(value)
    assert "Xy7-pw-Q2" not in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "namespace", "name"),
    [
        ("kafka://127.0.0.1:9092,127.0.0.2:9092/tweets", "kafka://127.0.0.1:9092", "tweets"),
        ("kinesis://telemetry?region=eu-west-1", "kinesis://eu-west-1", "telemetry"),
        ("kinesis://t?endpoint=http://127.0.0.1:4567", "kinesis://127.0.0.1:4567", "t"),
        ("pubsub://projects/p/subscriptions/s", "pubsub", "subscription:p:s"),
        ("pubsub://projects/p/topics/t", "pubsub", "topic:p:t"),
        ("file:///data/in/*.jsonl", "file", "/data/in"),
        ("dlq:s3://lake/dead_letters?error_type=InvalidJson", "s3://lake", "dead_letters"),
    ],
)
def test_sources_are_named_per_the_naming_spec(uri: str, namespace: str, name: str) -> None:
    ref = source_dataset(uri)
    assert (ref.namespace, ref.name) == (namespace, name)


@pytest.mark.parametrize(
    ("uri", "namespace", "name"),
    [
        ("s3://lake/tables/tweets", "s3://lake", "tables/tweets"),
        ("gs://lake/tweets", "gs://lake", "tweets"),
        ("file:///lake/tweets", "file", "/lake/tweets"),
        ("/lake/tweets/", "file", "/lake/tweets"),
    ],
)
def test_tables_are_named_per_the_naming_spec(uri: str, namespace: str, name: str) -> None:
    ref = table_dataset(uri)
    assert (ref.namespace, ref.name) == (namespace, name)


def test_telemetry_outputs_carry_the_great_expectations_results(tmp_path: Path) -> None:
    messages = generate_telemetry(400, bad_ratio=0.02, physics_bad_ratio=0.05, seed=5)
    publish(f"file://{tmp_path}/telemetry.parquet", messages)
    events_file = tmp_path / "lineage.jsonl"
    # The packaged suite with a speed limit no window keeps: that expectation fails.
    suite = read_suite(PACKAGED_SUITES / "vehicle_windows.json")
    for expectation in suite["expectations"]:
        if expectation["kwargs"].get("column") == "avg_speed_kph":
            expectation["kwargs"]["max_value"] = 1
    suite_file = tmp_path / "strict.json"
    suite_file.write_text(json.dumps(suite))
    where = {
        "output": tmp_path / "windows",
        "readings_output": tmp_path / "readings",
        "late_output": tmp_path / "late",
        "dlq": tmp_path / "dead_letters",
        "quality_output": tmp_path / "quality",
    }
    telemetry.run(
        [
            f"--source=file://{tmp_path}/telemetry.parquet",
            "--bounded",
            "--runner=direct",
            f"--lineage=file:{events_file}",
            f"--suite={suite_file}",
            *(f"--{flag}={path}" for flag, path in where.items()),
        ]
    )
    _, complete = events_of(events_file)
    assert complete["eventType"] == "COMPLETE"
    (source,) = complete["inputs"]
    subject = LocalFileRegistry().latest("vehicle_telemetry")
    assert _field_names(source["facets"]["schema"]) == [f["name"] for f in subject.schema["fields"]]
    outputs = _by_name(complete, "outputs")
    assert set(outputs) == {str(path) for path in where.values()}
    assert "schema" not in outputs[str(where["readings_output"])]["facets"]  # Parquet files

    assertions = outputs[str(where["output"])]["facets"]["dataQualityAssertions"]["assertions"]
    assert [a["assertion"] for a in assertions] == [e["type"] for e in suite["expectations"]]
    quality = DeltaTable(str(where["quality_output"])).to_pyarrow_table().to_pylist()
    assert quality  # batches were checked
    failed = {(f["expectation"], f["columns"]) for row in quality for f in row["failures"]}
    assert failed == {("expect_column_values_to_be_between", "avg_speed_kph")}
    assert {(a["assertion"], a["column"]) for a in assertions if not a["success"]} == failed
    assert sum(a["success"] for a in assertions) == len(assertions) - 1


# No shrinking: each example is a whole pipeline launch; a failure names the carrier.
@settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(secrets=secret_sets(), with_url_password=st.booleans())
def test_lineage_events_hold_no_secret(
    secrets: dict[str, str],
    with_url_password: bool,
    registry_url: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    caplog.set_level(logging.DEBUG)
    lake = tmp_path_factory.mktemp("lake")
    publish(f"file://{lake}/tweets.jsonl", generate_tweets(20, bad_ratio=0.1))
    flags = secret_flags(secrets, registry_url, lake, with_url_password=with_url_password)
    events_file = lake / "lineage.jsonl"

    assert _sentiment(lake, f"--lineage=file:{events_file}", *flags) == 0

    text = events_file.read_text()
    shown = carried(secrets, with_url_password=with_url_password)
    assert [json.loads(line)["eventType"] for line in text.splitlines()] == ["START", "COMPLETE"]
    assert json.loads(text.splitlines()[0])["inputs"][0]["facets"]["schema"]["fields"]
    for name, secret in shown.items():
        assert not leaks(secret, text), f"the {name} secret shows in a lineage event"
    assert_hidden(shown, Exposures(), caplog, capfd)


def test_a_dataset_written_as_parquet_files_is_named_by_its_folder(tmp_path: Path) -> None:
    """Readings land as Parquet files under a folder: the folder is the dataset."""
    path = tmp_path / "readings"
    path.mkdir()
    pq.write_table(pa.table({"a": [1]}), path / "part-0.parquet")
    assert table_dataset(str(path)).name == str(path)
