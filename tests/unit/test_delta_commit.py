import threading

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from schemas.errors import ConfigError
from transforms.sinks.delta import WriteToDelta, rows_to_arrow
from transforms.sinks.delta_commit import DeltaCommitter, txn_app_id

SCHEMA = pa.schema([("n", pa.int64())])


def _batch(offsets, partition="0", stream="t"):
    rows = [
        {
            "_record_id": f"{stream}/{partition}/{o}",
            "_source": "kafka",
            "_stream": stream,
            "_partition": partition,
            "_position": str(o),
            "_event_time_ms": o,
            "n": o,
        }
        for o in offsets
    ]
    return rows_to_arrow(rows, SCHEMA)


def _ids(uri):
    return sorted(DeltaTable(uri).to_pyarrow_table()["_record_id"].to_pylist())


def test_commit_records_highest_offset_per_partition(tmp_path):
    committer = DeltaCommitter(str(tmp_path), app_id="app")
    outcome = committer.commit(pa.concat_tables([_batch([3, 4, 5]), _batch([7], partition="1")]))
    assert (outcome.version, outcome.rows_written) == (0, 4)
    table = DeltaTable(str(tmp_path))
    assert table.transaction_version(txn_app_id("app", "t", "0")) == 5
    assert table.transaction_version(txn_app_id("app", "t", "1")) == 7


def test_a_retried_batch_writes_nothing(tmp_path):
    committer = DeltaCommitter(str(tmp_path), app_id="app")
    committer.commit(_batch(range(10)))
    again = committer.commit(_batch(range(10)))
    assert (again.version, again.rows_written, again.rows_already_committed) == (None, 0, 10)
    assert DeltaTable(str(tmp_path)).version() == 0


def test_out_of_order_batch_below_recorded_offset_is_still_written(tmp_path):
    committer = DeltaCommitter(str(tmp_path), app_id="app")
    committer.commit(_batch([10, 11, 12]))
    late = committer.commit(_batch([4, 5, 11]))  # 4, 5 are new; 11 is already there
    assert (late.rows_written, late.rows_already_committed) == (2, 1)
    assert len(_ids(str(tmp_path))) == 5
    assert DeltaTable(str(tmp_path)).transaction_version(txn_app_id("app", "t", "0")) == 12


def test_duplicates_inside_one_batch_are_written_once(tmp_path):
    outcome = DeltaCommitter(str(tmp_path), app_id="app").commit(_batch([1, 1, 2, 2, 2]))
    assert outcome.rows_written == 2
    assert _ids(str(tmp_path)) == ["t/0/1", "t/0/2"]


def test_separate_app_ids_do_not_see_each_others_progress(tmp_path):
    DeltaCommitter(str(tmp_path), app_id="a").commit(_batch([1]))
    # A different output (app id) writing the same coordinates: its own progress is empty,
    # but the rows are found in the table by record id, so nothing is duplicated.
    outcome = DeltaCommitter(str(tmp_path), app_id="b").commit(_batch([1, 2]))
    assert (outcome.rows_written, outcome.rows_already_committed) == (1, 1)
    assert _ids(str(tmp_path)) == ["t/0/1", "t/0/2"]


def test_two_concurrent_writers_of_the_same_batches_never_duplicate(tmp_path):
    uri = str(tmp_path)
    DeltaCommitter(uri, app_id="app").commit(_batch([0]))  # table exists before the race
    batches = [_batch(range(start, start + 50)) for start in range(1, 401, 50)]
    errors = []

    def writer():
        committer = DeltaCommitter(uri, app_id="app", max_attempts=50)
        try:
            for batch in batches:
                committer.commit(batch)
        except Exception as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = _ids(uri)
    assert len(ids) == len(set(ids)) == 401


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table_uri": ""}, "table_uri: expected a path or URI"),
        ({"app_id": ""}, "app_id: expected a name"),
        ({"batch_size": 0}, "batch_size: must be positive, got 0"),
        ({"max_batch_latency_s": -1}, "max_batch_latency_s: must be positive, got -1"),
    ],
)
def test_write_to_delta_config_errors(kwargs, message):
    args = {"table_uri": "/tmp/x", "schema": SCHEMA, "app_id": "a", **kwargs}
    with pytest.raises(ConfigError, match=message):
        WriteToDelta(args.pop("table_uri"), **args)


def test_a_writer_that_saw_no_table_does_not_append_unchecked_on_one_created_meanwhile(
    tmp_path,
):
    uri = str(tmp_path / "t")
    first, second = DeltaCommitter(uri, app_id="app"), DeltaCommitter(uri, app_id="app")
    saw_nothing = [None]  # the second writer looked before the first one created the table
    real_current = second._handle.current
    second._handle.current = lambda: saw_nothing.pop() if saw_nothing else real_current()
    first.commit(_batch(range(0, 150)))
    outcome = second.commit(_batch(range(100, 200)))  # overlaps the first writer's rows
    assert (outcome.rows_written, outcome.rows_already_committed) == (50, 50)
    assert _ids(uri) == sorted(f"t/0/{o}" for o in range(200))


def test_a_first_commit_killed_before_its_log_entry_leaves_no_table(tmp_path):
    """kill -9 inside a table's first commit leaves ``_delta_log/`` without a version and
    a data file nothing references: the next commit creates the table, with its rows only."""
    uri = tmp_path / "t"
    (uri / "_delta_log").mkdir(parents=True)
    (uri / "part-00000-orphan.parquet").write_bytes(b"written before the kill")
    outcome = DeltaCommitter(str(uri), app_id="app").commit(_batch([0, 1, 2]))
    assert (outcome.version, outcome.rows_written) == (0, 3)
    assert _ids(str(uri)) == ["t/0/0", "t/0/1", "t/0/2"]
