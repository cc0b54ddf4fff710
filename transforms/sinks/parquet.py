"""WriteToPartitionedParquet: Hive-partitioned Parquet files whose names a retry reproduces.

Beam's own streaming ``WriteToParquet`` is broken upstream (beam#25598), and its
batch writer names files by shard count, so a rerun can duplicate data. This
writer instead:

* partitions rows by event hour, ``dt=YYYY-MM-DD/hour=HH`` (UTC), and spreads each
  hour over ``shards`` keys by record id;
* batches each (hour, shard) with :class:`~transforms.sinks.batching.BatchByKey`
  (row, byte and latency bounds), which works the same in batch and streaming and
  never drops late rows; in a batch run the same input forms the same batches;
* names each file after its content: ``part-SSS-<digest of the sorted record ids>``.
  A retried bundle rewrites the same file with the same rows, and a rerun that
  forms the same batches overwrites identical files, never adding copies;
* writes a temporary file and renames it on local disks; on object stores one PUT
  is atomic already.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from schemas.errors import ConfigError
from transforms.batches import Batch, is_batched
from transforms.checkpoint.storage import arrow_filesystem
from transforms.sinks.batching import TEXT_KEYED, BatchByKey, BatchPolicy
from transforms.sinks.delta import rows_to_arrow

__all__ = ["WriteToPartitionedParquet", "partition_of"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def partition_of(event_time_ms: int) -> str:
    """The Hive partition path of an event time (UTC).

    Years are written with four digits (``strftime`` writes year 1 as ``1``), so
    partition paths sort as their times do.

    >>> partition_of(1793520000000)
    'dt=2026-11-01/hour=08'
    >>> partition_of(-62135596800000)
    'dt=0001-01-01/hour=00'
    """
    moment = _EPOCH + timedelta(milliseconds=event_time_ms)
    return f"dt={moment.year:04d}-{moment.month:02d}-{moment.day:02d}/hour={moment.hour:02d}"


def _file_name(shard: int, table: pa.Table) -> str:
    digest = hashlib.blake2b(digest_size=10)
    for record_id in table.column("_record_id").to_pylist():
        digest.update(record_id.encode())
        digest.update(b"\n")
    return f"part-{shard:03d}-{digest.hexdigest()}.parquet"


def _sorted_unique(table: pa.Table) -> pa.Table:
    table = table.sort_by("_record_id")
    ids = table.column("_record_id")
    if len(ids) < 2:
        return table
    repeated = pc.equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    keep = pa.concat_arrays([pa.array([True]), pc.invert(repeated.combine_chunks())])
    return table.filter(keep)


class _WriteFilesDoFn(beam.DoFn):
    def __init__(self, base_uri: str, schema: pa.Schema, options: dict[str, str] | None) -> None:
        self._base_uri, self._schema, self._options = base_uri, schema, options
        self._fs: pafs.FileSystem | None = None
        self._files = Metrics.counter("dataplane.parquet", "files_written")
        self._rows = Metrics.counter("dataplane.parquet", "rows_written")

    def setup(self) -> None:
        self._fs, self._base = arrow_filesystem(self._base_uri, self._options)

    def process(self, batch: tuple[str, Iterable[dict[str, Any]]]) -> Iterator[dict]:
        file_key, rows = batch
        partition, shard_text = file_key.rsplit("#", 1)
        shard = int(shard_text)
        table = _sorted_unique(rows_to_arrow(rows, self._schema))
        directory = f"{self._base}/{partition}"
        path = f"{directory}/{_file_name(shard, table)}"
        self._write(directory, path, table)
        self._files.inc()
        self._rows.inc(table.num_rows)
        yield {"path": path, "partition": partition, "shard": shard, "rows": table.num_rows}

    def _write(self, directory: str, path: str, table: pa.Table) -> None:
        assert self._fs is not None
        self._fs.create_dir(directory, recursive=True)
        if isinstance(self._fs, pafs.LocalFileSystem):
            temporary = f"{path}.inprogress"
            pq.write_table(table, temporary, filesystem=self._fs)
            self._fs.move(temporary, path)
        else:
            pq.write_table(table, path, filesystem=self._fs)


class WriteToPartitionedParquet(beam.PTransform):
    """Writes rows as Parquet under ``base_uri/dt=YYYY-MM-DD/hour=HH/``, retry-safe.

    Rows carry the coordinate fields decoding adds (``_record_id``, ``_event_time_ms``,
    ...); the partition comes from ``_event_time_ms``. Files hold the coordinate
    columns and ``schema``'s, sorted by ``_record_id``; within a batch a record id
    repeated by an upstream retry is written once.

    Args:
        base_uri: a local directory, ``s3://bucket/prefix`` or ``gs://bucket/prefix``.
        schema: the Arrow schema of the data columns.
        storage_options: credentials and endpoints (see :mod:`transforms.checkpoint.storage`).
        shards: files written in parallel per hour.
        batch_size: rows per file at most.
        max_batch_latency_s: longest a row waits for its file in streaming.

    Returns:
        A PCollection of one dict per file: ``path``, ``partition``, ``shard``, ``rows``.

    Raises:
        ConfigError: an empty URI, non-positive shards, batch size or latency.

    Example:
        >>> import tempfile, apache_beam as beam, pyarrow as pa, pyarrow.dataset as ds
        >>> rows = [{"_record_id": f"r{i}", "_source": "file", "_stream": "s",
        ...          "_partition": "0", "_position": str(i), "_event_time_ms": i * 1800_000,
        ...          "speed": 50.0 + i} for i in range(3)]
        >>> base = tempfile.mkdtemp()
        >>> with beam.Pipeline() as p:
        ...     _ = p | beam.Create(rows) | WriteToPartitionedParquet(
        ...         base, schema=pa.schema([("speed", pa.float64())]))
        >>> table = ds.dataset(base, partitioning="hive").to_table()
        >>> sorted(zip(table["hour"].to_pylist(), table["speed"].to_pylist()))
        [(0, 50.0), (0, 51.0), (1, 52.0)]
    """

    def __init__(
        self,
        base_uri: str,
        *,
        schema: pa.Schema,
        storage_options: dict[str, str] | None = None,
        shards: int = 1,
        batch_size: int = 50_000,
        max_batch_latency_s: float = 5.0,
    ) -> None:
        super().__init__()
        if not base_uri:
            raise ConfigError("base_uri", "expected a directory or URI, got nothing")
        if shards <= 0:
            raise ConfigError("shards", f"must be positive, got {shards}")
        self._batching = BatchPolicy(batch_size, max_batch_latency_s)
        self._base_uri, self._schema, self._options = base_uri.rstrip("/"), schema, storage_options
        self._shards = shards

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        shards = self._shards

        def file_key(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            # A text key on purpose: Beam's in-process runner keeps timers of every
            # stateful step in buffers named by timer family alone, so batching steps
            # whose key coders differ would break each other's timers.
            shard = zlib.crc32(row["_record_id"].encode()) % shards
            return f"{partition_of(row['_event_time_ms'])}#{shard}", row

        def files_of(element: Any) -> Iterator[tuple[str, Any]]:
            if not isinstance(element, Batch):
                yield file_key(element)
                return
            by_file: dict[str, Batch] = {}
            for row in element:
                key, _row = file_key(row)
                by_file.setdefault(key, Batch()).append(row)
            yield from by_file.items()

        key_by_file = beam.FlatMap(files_of).with_output_types(
            beam.typehints.KV[str, Batch] if is_batched(rows) else TEXT_KEYED
        )
        return (
            rows
            | "KeyByFile" >> key_by_file
            | "Batch" >> BatchByKey(self._batching, name=self._base_uri)
            | "WriteFiles"
            >> beam.ParDo(_WriteFilesDoFn(self._base_uri, self._schema, self._options))
        )

    def display_data(self) -> dict[str, Any]:
        return {
            "base_uri": self._base_uri,
            "shards": self._shards,
            **self._batching.display_data(),
        }
