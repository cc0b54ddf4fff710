"""How secret values reach workers without travelling in the job.

A worker unpickles the steps it is sent; each :class:`~schemas.secrets.Secret` in
them is resolved there, from where its template says. These tests unpickle the steps
of a built job in a fresh process, as a worker does, and check what it gets:

* values given on the launching machine: from the file staged with a remote job
  (``$SEMI_PERSISTENT_DIRECTORY/staged``, where Beam's workers put staged files), or
  from the environment of local worker processes (a multi-process run, end to end);
* ``${env:NAME}``: from the worker's environment; ``${gcp-secret:...}``: from Secret
  Manager.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.portability.api import beam_runner_api_pb2
from deltalake import DeltaTable

from beam_pipelines import sentiment
from beam_pipelines.feeds.publish import publish
from beam_pipelines.feeds.tweets import generate_tweets
from schemas.registry import LocalFileRegistry
from tests.unit.secret_leaks import BasicAuthRegistry, Exposures

ROOT = Path(__file__).resolve().parents[2]
DATAFLOW = [
    "--source=kafka://127.0.0.1:9/tweets",
    "--output=gs://example-bucket/lake/o",
    "--dlq=gs://example-bucket/lake/d",
    "--runner=dataflow",
    "--project=example-project",
    "--region=europe-west1",
    "--temp_location=gs://example-bucket/tmp",
    "--sdk_container_image=example/beam-dataplane:latest",
    "--dry_run=True",
    "--no_auth",
]
# Unpickles every ParDo's DoFn of a runner API proto, as a worker does, and prints the
# SHA-256 of each string in them (or the error that stopped it).
WORKER = """
import hashlib, json, sys
from apache_beam.internal import pickler
from apache_beam.portability.api import beam_runner_api_pb2

def secrets_in(obj, seen, depth=0):
    if id(obj) in seen or depth > 8:
        return
    seen.add(id(obj))
    if isinstance(obj, str):
        yield hashlib.sha256(obj.encode()).hexdigest()
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from secrets_in(value, seen, depth + 1)
    elif isinstance(obj, (list, tuple, set)):
        for value in obj:
            yield from secrets_in(value, seen, depth + 1)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        yield from secrets_in(vars(obj), seen, depth + 1)

proto = beam_runner_api_pb2.Pipeline.FromString(open(sys.argv[1], "rb").read())
found, seen, kept = set(), set(), []  # kept: ids of freed objects would be reused
try:
    for transform in proto.components.transforms.values():
        if transform.spec.urn == "beam:transform:pardo:v1":
            payload = beam_runner_api_pb2.ParDoPayload.FromString(transform.spec.payload)
            kept.append(pickler.loads(payload.do_fn.payload))
            found.update(secrets_in(kept[-1], seen))
except Exception as err:
    print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
else:
    print(json.dumps({"secrets": sorted(found)}))
"""


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _as_a_worker(proto: bytes, tmp_path: Path, env: dict[str, str]) -> dict[str, Any]:
    """What a worker process with (only) ``env`` of ours finds in the steps of ``proto``."""
    (tmp_path / "pipeline.pb").write_bytes(proto)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATAPLANE_")}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path / "pipeline.pb")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


class _Job:
    """The runner's proto of a Dataflow dry run, and the files staged with it."""

    def __init__(self) -> None:
        self.proto = b""
        self.staged: dict[str, bytes] = {}


@pytest.fixture
def dataflow_job(monkeypatch: pytest.MonkeyPatch) -> _Job:
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    job = _Job()
    original = beam.Pipeline.run

    def run(pipeline: beam.Pipeline, *args: Any, **kwargs: Any) -> Any:
        result = original(pipeline, *args, **kwargs)
        built = pipeline.runner.proto_pipeline
        job.proto = built.SerializeToString()
        for environment in built.components.environments.values():
            for artifact in environment.dependencies:  # read while they exist
                path = beam_runner_api_pb2.ArtifactFilePayload.FromString(artifact.type_payload)
                role = beam_runner_api_pb2.ArtifactStagingToRolePayload.FromString(
                    artifact.role_payload
                )
                if role.staged_name.startswith("dataplane-secrets-"):
                    job.staged[role.staged_name] = Path(path.path).read_bytes()
        return result

    monkeypatch.setattr(beam.Pipeline, "run", run)
    return job


def test_a_remote_worker_reads_the_values_from_the_file_staged_with_the_job(
    dataflow_job: _Job, registry_url: str, tmp_path: Path
) -> None:
    secrets = {
        "kafka": "k-7Hq!x9#Lw2@pV",
        "storage": "s-Qm4$zT8&nR1%uY",
        "registry": "r-Jd3^bN6*cK0(eF",
    }
    code = sentiment.main(
        [
            *DATAFLOW,
            "--kafka_config",
            f"sasl.password={secrets['kafka']}",
            f"--storage_option=AWS_SECRET_ACCESS_KEY={secrets['storage']}",
            f"--registry={registry_url}",
            f"--registry_config=basic.auth.user.info=user:{secrets['registry']}",
        ]
    )
    assert code == 0
    [(name, content)] = dataflow_job.staged.items()
    staged = tmp_path / "semi" / "staged"
    staged.mkdir(parents=True)
    (staged / name).write_bytes(content)

    worker = _as_a_worker(
        dataflow_job.proto, tmp_path, {"SEMI_PERSISTENT_DIRECTORY": str(tmp_path / "semi")}
    )
    assert {_sha(secrets["kafka"]), _sha(secrets["storage"])} <= set(worker["secrets"])
    assert _sha(f"user:{secrets['registry']}") in worker["secrets"]

    (staged / name).unlink()  # a worker the file never reached: a clear error, no value
    worker = _as_a_worker(
        dataflow_job.proto, tmp_path, {"SEMI_PERSISTENT_DIRECTORY": str(tmp_path / "semi")}
    )
    assert "SecretUnavailableError: ${dataplane-secret:" in worker["error"]
    assert not any(secret in worker["error"] for secret in secrets.values())


def test_env_references_are_read_from_each_worker_environment(
    dataflow_job: _Job, registry_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATAPLANE_TEST_KAFKA_PASSWORD", "launcher-Zx8!q")
    code = sentiment.main(
        [
            *DATAFLOW,
            "--kafka_config=sasl.password=${env:DATAPLANE_TEST_KAFKA_PASSWORD}",
            f"--registry={registry_url}",
        ]
    )
    assert code == 0
    assert dataflow_job.staged == {}  # nothing given here: nothing to stage
    worker = _as_a_worker(
        dataflow_job.proto, tmp_path, {"DATAPLANE_TEST_KAFKA_PASSWORD": "worker-Pq2#w"}
    )
    assert _sha("worker-Pq2#w") in worker["secrets"]
    assert _sha("launcher-Zx8!q") not in worker["secrets"]
    worker = _as_a_worker(dataflow_job.proto, tmp_path, {})
    assert worker["error"].endswith(
        "${env:DATAPLANE_TEST_KAFKA_PASSWORD}: not set in this environment"
    )


def test_secret_manager_references_are_read_where_they_are_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pickle

    from apache_beam.utils.secret import GcpSecret

    from schemas.secrets import SecretUnavailableError, resolve

    name = "projects/example-project/secrets/lake-key/versions/3"
    asked: list[str] = []

    def access(secret: GcpSecret) -> bytes:
        asked.append(secret._version_name)
        return b"gcp-Vb5%mW"

    monkeypatch.setattr(GcpSecret, "get_secret_bytes", access)
    value = resolve(f"${{gcp-secret:{name}}}")
    assert value == "gcp-Vb5%mW" and asked == [name]
    assert b"gcp-Vb5%mW" not in pickle.dumps({"AWS_SECRET_ACCESS_KEY": value})

    def refused(secret: GcpSecret) -> bytes:
        raise PermissionError("403 secretmanager.versions.access denied")

    monkeypatch.setattr(GcpSecret, "get_secret_bytes", refused)
    with pytest.raises(SecretUnavailableError, match="lake-key/versions/4}: Secret Manager"):
        resolve("${gcp-secret:projects/example-project/secrets/lake-key/versions/4}")


@pytest.fixture
def guarded_registry(registry_url: str) -> Iterator[BasicAuthRegistry]:
    proxy = BasicAuthRegistry(registry_url, "user:reg-Hn4&tL8!")
    yield proxy
    proxy.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    "workers",
    [[], ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]],
    ids=["in process", "two worker processes"],
)
def test_local_workers_use_the_secret_given_on_the_command_line(
    workers: list[str],
    guarded_registry: BasicAuthRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = Exposures().install(monkeypatch)
    tweet = LocalFileRegistry().get("tweet")
    publish(f"file://{tmp_path}/tweets.parquet", generate_tweets(30, bad_ratio=0.0, schema=tweet))
    host = guarded_registry.url.split("://", 1)[1]
    code = sentiment.main(
        [
            f"--source=file://{tmp_path}/tweets.parquet",
            f"--output={tmp_path / 'tweets'}",
            f"--dlq={tmp_path / 'dead_letters'}",
            "--runner=direct",
            *workers,
            f"--registry=http://user:{'reg-Hn4&tL8!'.replace('&', '%26')}@{host}",
        ]
    )
    assert code == 0
    assert seen.leaked("reg-Hn4&tL8!") == [] and seen.leaked("reg-Hn4%26tL8!") == []
    assert DeltaTable(str(tmp_path / "tweets")).to_pyarrow_table().num_rows == 30
    # the workers asked the registry for the values' schema with the right password
    assert guarded_registry.by_id > 0 and guarded_registry.refused == 0
    assert not [name for name in os.environ if name.startswith("DATAPLANE_SECRET_")]
    shutil.rmtree(tmp_path / "tweets")
