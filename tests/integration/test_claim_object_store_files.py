"""README claim: ``s3://`` and ``gs://`` patterns in ``ReadFromFiles``.

"`file:///PATH/PATTERN[?format=jsonl|parquet]` (also `s3://`/`gs://` patterns through
`ReadFromFiles`)": files matching a pattern in a bucket are read, JSONL by line and Parquet by
row, each record naming its object; objects outside the pattern are not. S3 is moto's server,
GCS the gcp-storage-emulator, both reached through Beam's own filesystems.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import apache_beam as beam
import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from transforms.sources import ReadFromFiles

pytestmark = pytest.mark.integration

_GATHERED: dict[str, list[Any]] = {}


class _Gather(beam.DoFn):
    def __init__(self, key: str) -> None:
        self._key = key

    def process(self, record: Any) -> None:
        _GATHERED.setdefault(self._key, []).append((record.stream, record.position, record.value))


def _objects() -> dict[str, bytes]:
    """Two JSONL files and a Parquet file under ``in/``, and objects the patterns leave out."""
    parquet = io.BytesIO()
    pq.write_table(pa.table({"value": [b'{"n": 10}', b'{"n": 11}']}), parquet)
    return {
        "in/a.jsonl": b'{"n": 1}\n{"n": 2}\n',
        "in/b.jsonl": b'{"n": 3}\n',
        "in/c.parquet": parquet.getvalue(),
        "in/notes.txt": b"not a record\n",
        "other/d.jsonl": b'{"n": 99}\n',
    }


def _read(pattern: str, flags: list[str]) -> list[tuple[str, str, bytes]]:
    key = uuid.uuid4().hex
    with beam.Pipeline(runner=FnApiRunner(), options=PipelineOptions(flags)) as pipeline:
        _ = pipeline | ReadFromFiles(pattern) | beam.ParDo(_Gather(key))
    return sorted(_GATHERED.pop(key, []))


def _check(root: str, read: Callable[[str], list[tuple[str, str, bytes]]]) -> None:
    assert read(f"{root}/in/*.jsonl") == [
        (f"{root}/in/a.jsonl", "0", b'{"n": 1}'),
        (f"{root}/in/a.jsonl", "1", b'{"n": 2}'),
        (f"{root}/in/b.jsonl", "0", b'{"n": 3}'),
    ]
    assert read(f"{root}/in/*.parquet") == [
        (f"{root}/in/c.parquet", "0", b'{"n": 10}'),
        (f"{root}/in/c.parquet", "1", b'{"n": 11}'),
    ]


def test_an_s3_pattern_reads_the_matching_objects(moto_endpoint: str) -> None:
    bucket = f"claims-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    for name, data in _objects().items():
        s3.put_object(Bucket=bucket, Key=name, Body=data)
    flags = [
        f"--s3_endpoint_url={moto_endpoint}",
        "--s3_region_name=us-east-1",
        "--s3_access_key_id=testing",
        "--s3_secret_access_key=testing",
    ]
    _check(f"s3://{bucket}", lambda pattern: _read(pattern, flags))


def test_a_gs_pattern_reads_the_matching_objects(
    gcs_emulator: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apache_beam.internal.gcp import auth
    from google.cloud import storage

    # Beam looks for Google credentials for ~24 s (retrying) before it goes anonymous, as it
    # must against an emulator: start anonymous. (Its own state, restored after the test.)
    monkeypatch.setattr(auth._Credentials, "_credentials_init", True)
    monkeypatch.setattr(auth._Credentials, "_credentials", None)
    client = storage.Client.create_anonymous_client()
    prefix = f"claims-{uuid.uuid4().hex[:8]}"
    for name, data in _objects().items():
        client.bucket("lake").blob(f"{prefix}/{name}").upload_from_string(data)
    flags = ["--project=test-project"]
    _check(f"gs://lake/{prefix}", lambda pattern: _read(pattern, flags))
    assert json.loads(_read(f"gs://lake/{prefix}/other/*.jsonl", flags)[0][2]) == {"n": 99}
