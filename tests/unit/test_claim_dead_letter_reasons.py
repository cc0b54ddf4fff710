"""README claim: the dead-letter reasons ``FormatMismatch`` and ``UnusableSchema``.

A sentiment run reads Confluent frames whose schema ids are versions of its own subject
(``tweet``) that it cannot use: version 2 is Avro where the subject is read as JSON
(``FormatMismatch``), version 3 is a JSON Schema that does not compile (``UnusableSchema``).
Each must become a dead letter with that reason and the frame's schema id, from a schema
directory and from the same files behind the Confluent REST API, and the good frames rows.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_pipelines import sentiment
from schemas.codecs import encode_framed
from schemas.registry import LocalFileRegistry
from schemas.server import RegistryServer
from schemas.wire import frame
from tests.helpers import read_table

ROOT = Path(__file__).resolve().parents[2]

_AVRO_TWEET = {
    "type": "record",
    "name": "tweet",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "text", "type": "string"},
        {"name": "created_at", "type": "string"},
    ],
}
# fastjsonschema cannot compile it: our compiler never follows a $ref to another document.
_UNUSABLE = {"type": "object", "properties": {"id": {"$ref": "https://example.com/id.json"}}}


def _tweet(n: int) -> dict:
    return {
        "id": str(n),
        "text": f"a good day number {n}",
        "created_at": "2026-11-01T00:00:00.000000Z",
        "user": {"id": "u", "handle": "h"},
    }


def _registry_dir(root: Path) -> Path:
    (root / "tweet").mkdir(parents=True)
    shutil.copy(ROOT / "schemas" / "tweet" / "1.json", root / "tweet" / "1.json")
    (root / "tweet" / "2.avsc").write_text(json.dumps(_AVRO_TWEET))
    (root / "tweet" / "3.json").write_text(json.dumps(_UNUSABLE))
    return root


def _frames_file(path: Path, registry: LocalFileRegistry) -> dict[str, int]:
    """Good v1 frames, v2 (Avro) frames and v3 frames; returns each bad kind's schema id."""
    v1, v2, v3 = (registry.get("tweet", v) for v in (1, 2, 3))
    avro = {k: v for k, v in _tweet(0).items() if k != "user"}
    values = [encode_framed(v1, _tweet(n)) for n in range(5)]
    values += [encode_framed(v2, {**avro, "id": str(n)}) for n in range(3)]
    values += [frame(v3.schema_id, json.dumps(_tweet(n)).encode()) for n in range(2)]
    pq.write_table(pa.table({"value": pa.array(values, pa.binary())}), path)
    return {"FormatMismatch": v2.schema_id, "UnusableSchema": v3.schema_id}


@pytest.fixture(params=["directory", "rest"])
def registry_flag(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """``--registry`` as a schema directory, or the same files served over REST."""
    root = _registry_dir(tmp_path / "registry")
    if request.param == "directory":
        yield str(root)
        return
    with RegistryServer(LocalFileRegistry(root)) as server:
        yield server.url


def test_frames_of_an_unusable_or_other_format_version_are_dead_letters(
    tmp_path: Path, registry_flag: str
) -> None:
    ids = _frames_file(tmp_path / "frames.parquet", LocalFileRegistry(tmp_path / "registry"))
    sentiment.run(
        [
            f"--source=file://{tmp_path / 'frames.parquet'}",
            f"--output={tmp_path / 'out'}",
            f"--dlq={tmp_path / 'dlq'}",
            f"--registry={registry_flag}",
            "--subject_version=1",
            "--runner=direct",
        ]
    )
    letters = read_table(str(tmp_path / "dlq")).to_pylist()
    assert Counter(r["error_type"] for r in letters) == {"FormatMismatch": 3, "UnusableSchema": 2}
    for letter in letters:
        assert letter["schema_id"] == ids[letter["error_type"]]
        assert letter["stage"] == "decode" and letter["value"][0] == 0
    mismatch = next(r for r in letters if r["error_type"] == "FormatMismatch")
    assert mismatch["message"].endswith("is avro; expected json")
    assert sorted(r["id"] for r in read_table(str(tmp_path / "out")).to_pylist()) == [
        str(n) for n in range(5)
    ]
