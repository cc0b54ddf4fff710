"""Schema ids are the same on every machine: CRC-32 values, never Python's salted hash()."""

import json
import os
import subprocess
import sys
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.registry import LocalFileRegistry, schema_id_for

# Fixed values: what every release and every machine must keep assigning.
KNOWN_IDS = {
    ("tweet", 1): 1585189352,
    ("vehicle_telemetry", 1): 1493895404,
    ("vehicle_telemetry", 2): 1073895766,
}
# CRC-32 of "s27-V1'_/1" is 0x80000000 (found by solving the CRC's linear equations):
# without its top bit it is 0, which is not an id, so the id is 1.
ZERO_CRC_SUBJECT = "s27-V1'_"


@pytest.mark.parametrize(("coordinates", "schema_id"), sorted(KNOWN_IDS.items()))
def test_schema_ids_are_fixed_values(coordinates, schema_id):
    assert schema_id_for(*coordinates) == schema_id


def test_the_packaged_registry_assigns_the_fixed_ids():
    registry = LocalFileRegistry()
    for (subject, version), schema_id in KNOWN_IDS.items():
        assert registry.get(subject, version).schema_id == schema_id
        assert registry.by_id(schema_id).subject == subject


def test_a_crc_of_zero_after_the_top_bit_gives_id_1():
    assert zlib.crc32(f"{ZERO_CRC_SUBJECT}/1".encode()) == 0x80000000
    assert schema_id_for(ZERO_CRC_SUBJECT, 1) == 1


_PROGRAM = (
    "import json, sys\n"
    "from schemas.registry import schema_id_for\n"
    "pairs = json.loads(sys.argv[1])\n"
    "print(json.dumps([schema_id_for(s, v) for s, v in pairs]))\n"
)


def _ids_in_a_process_with_hash_seed(seed: str, pairs: list[tuple[str, int]]) -> list[int]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, json.dumps(pairs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_schema_ids_do_not_depend_on_the_process_hash_seed():
    pairs = [("tweet", 1), ("vehicle_telemetry", 2), ("orders-value", 7), ("ü", 1)]
    here = [schema_id_for(s, v) for s, v in pairs]
    assert _ids_in_a_process_with_hash_seed("1", pairs) == here
    assert _ids_in_a_process_with_hash_seed("4242", pairs) == here


@given(subject=st.text(min_size=1, max_size=40), version=st.integers(1, 10**6))
def test_schema_ids_are_positive_31_bit_ints(subject, version):
    schema_id = schema_id_for(subject, version)
    assert 1 <= schema_id <= 0x7FFFFFFF
