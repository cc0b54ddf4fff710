"""Dead letters read back for replay: choosing letters, the dlq: URI, records as they were."""

import apache_beam as beam
import pytest
from deltalake import DeltaTable

from schemas.errors import ConfigError
from tests.helpers import collect
from transforms.deadletter import dead_letter
from transforms.record import make_record
from transforms.sinks import WriteDeadLettersToDelta
from transforms.sources import ReadDeadLetters, read_from_uri
from transforms.sources.deadletters import letters_to_replay


@pytest.fixture
def dlq(tmp_path):
    letters = [
        dead_letter(
            make_record(
                source="kafka",
                stream="t",
                partition=n % 2,
                position=n,
                key=b"k",
                value=f"v{n}".encode(),
                headers=[("h", b"1")],
                event_time_ms=1_700_000_000_000 + n,
            ),
            stage="decode" if n % 3 else "sentiment",
            error_type="InvalidJson" if n % 3 else "PoisonRecord",
            message="bad",
        )
        for n in range(9)
    ]
    uri = str(tmp_path / "dlq")
    with beam.Pipeline() as p:
        _ = p | beam.Create(letters) | WriteDeadLettersToDelta(uri, app_id="t-dlq")
    return uri, letters


def test_letters_come_back_as_the_records_they_were(dlq):
    uri, letters = dlq
    (records,) = collect(lambda p: p | ReadDeadLetters(uri))
    originals = {letter.record.record_id: letter.record for letter in letters}
    assert len(records) == 9
    for record in records:
        original = originals[record.record_id]
        assert record._replace(prev_position=None) == original._replace(prev_position=None)
        assert record.prev_position is None  # replays are outside every partition's chain


def test_filters_by_reason_and_stage_and_skips_letters_already_written(dlq):
    uri, _ = dlq
    assert letters_to_replay(uri, error_types=["PoisonRecord"]).num_rows == 3
    assert letters_to_replay(uri, stages=["decode"]).num_rows == 6
    assert letters_to_replay(uri, error_types=["PoisonRecord"], stages=["decode"]).num_rows == 0
    from transforms.deadletter import mark_replayed

    ids = letters_to_replay(uri, error_types=["PoisonRecord"])["_record_id"].to_pylist()
    mark_replayed(uri, {ids[0]: "written", ids[1]: "failed again: X"}, "r1", None)
    assert letters_to_replay(uri).num_rows == 8
    assert letters_to_replay(uri, include_replayed=True).num_rows == 9
    marked = DeltaTable(uri).to_pyarrow_table().to_pylist()
    assert {r["replay_outcome"] for r in marked} == {"written", "failed again: X", None}


def test_the_dlq_uri(dlq):
    uri, _ = dlq
    read = read_from_uri(f"dlq:{uri}?error_type=InvalidJson,PoisonRecord&stage=decode")
    assert read.display_data() == {
        "table_uri": uri,
        "error_types": "InvalidJson,PoisonRecord",
        "stages": "decode",
    }
    with pytest.raises(ConfigError, match="unknown dlq:// parameters"):
        read_from_uri(f"dlq:{uri}?reason=x")
    with pytest.raises(ConfigError, match="no dead-letter table"):
        letters_to_replay(f"{uri}-missing")
