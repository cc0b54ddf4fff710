"""ReadFromFiles: replay JSONL or Parquet files as Records (local, s3://, gs://).

A JSONL line becomes one Record (the line's bytes are the value; position is the
line number). A Parquet row becomes one Record: the ``value`` column when the
file has one (e.g. a dump of raw messages or dead letters, with ``key`` and
``_event_time_ms`` / ``event_time_ms`` used when present), otherwise the row as
JSON. Every file is one unit of work; records keep the file path as ``stream``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from schemas.errors import ConfigError
from transforms.progress import note
from transforms.record import Record, make_record

__all__ = ["ReadFromFiles"]

_FORMATS = ("auto", "jsonl", "parquet")
_TIME_COLUMNS = ("_event_time_ms", "event_time_ms")


def _format_of(path: str, declared: str) -> str:
    if declared != "auto":
        return declared
    return "parquet" if path.endswith((".parquet", ".pq")) else "jsonl"


class _ReadFileDoFn(beam.DoFn):
    def __init__(self, fmt: str, max_records: int) -> None:
        self._format = fmt
        self._max_records = max_records
        self._read = Metrics.counter("dataplane.files", "records_read")

    def process(self, readable: Any) -> Iterator[TimestampedValue]:
        path = readable.metadata.path
        modified_ms = int((readable.metadata.last_updated_in_seconds or 0) * 1000)
        rows = (
            self._parquet_rows(readable)
            if _format_of(path, self._format) == "parquet"
            else self._jsonl_rows(readable)
        )
        for position, (key, value, event_ms) in enumerate(rows):
            if self._max_records and position >= self._max_records:
                return
            event_ms = modified_ms if event_ms is None else event_ms
            self._read.inc()
            note("records_read", source="file")
            record = make_record(
                source="file",
                stream=path,
                partition=0,
                position=position,
                key=key,
                value=value,
                event_time_ms=event_ms,
            )
            yield TimestampedValue(record, Timestamp(micros=event_ms * 1000))

    @staticmethod
    def _jsonl_rows(readable: Any) -> Iterator[tuple[bytes | None, bytes, int | None]]:
        with readable.open() as handle:
            for line in handle:
                line = line.rstrip(b"\r\n")
                if line:
                    yield None, line, None

    @staticmethod
    def _parquet_rows(readable: Any) -> Iterator[tuple[bytes | None, bytes | None, int | None]]:
        import pyarrow.parquet as pq

        with readable.open() as handle:
            table = pq.read_table(handle)
        names = set(table.column_names)
        time_column = next((c for c in _TIME_COLUMNS if c in names), None)
        for row in table.to_pylist():
            if "value" in names:
                value = row["value"]
                value = value.encode("utf-8") if isinstance(value, str) else value
            else:
                value = json.dumps(row, default=str, ensure_ascii=False).encode("utf-8")
            key = row.get("key") if "key" in names else None
            key = key.encode("utf-8") if isinstance(key, str) else key
            event_ms = row.get(time_column) if time_column else None
            yield key, value, int(event_ms) if event_ms is not None else None


class ReadFromFiles(beam.PTransform):
    """Replays JSONL or Parquet files as :class:`~transforms.record.Record` elements.

    Args:
        pattern: a file pattern Beam's filesystems understand: a local glob,
            ``s3://bucket/prefix/*.jsonl``, ``gs://...``.
        format: ``"auto"`` (by extension: .parquet/.pq, else JSONL), ``"jsonl"`` or
            ``"parquet"``.
        max_records: stop after this many records per file (0: all).

    Raises:
        ConfigError: for an empty pattern or an unknown format.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.jsonl").write_text('{"n": 1}\\n{"n": 2}\\n')
        >>> with beam.Pipeline() as p:
        ...     _ = (p | ReadFromFiles(str(folder / "*.jsonl"))
        ...          | beam.Map(lambda r: print(r.position, r.value)))
        0 b'{"n": 1}'
        1 b'{"n": 2}'
    """

    def __init__(self, pattern: str, *, format: str = "auto", max_records: int = 0) -> None:
        super().__init__()
        if not pattern:
            raise ConfigError("pattern", "expected a file pattern, got nothing")
        if format not in _FORMATS:
            raise ConfigError("format", f"expected one of {list(_FORMATS)}, got {format!r}")
        self._pattern, self._format, self._max_records = pattern, format, max_records

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Match" >> fileio.MatchFiles(self._pattern, empty_match_treatment="ALLOW")
            | "Open" >> fileio.ReadMatches()
            | "Distribute" >> beam.Reshuffle()
            | "Read"
            >> beam.ParDo(_ReadFileDoFn(self._format, self._max_records)).with_output_types(Record)
        )

    def display_data(self) -> dict[str, Any]:
        return {"pattern": self._pattern, "format": self._format}
