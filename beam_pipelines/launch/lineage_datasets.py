"""OpenLineage datasets of a run: names per the naming spec, schema and statistics facets.

Names (https://openlineage.io/docs/spec/naming):

=================  ===================================  ==============================
source or table    namespace                            name
=================  ===================================  ==============================
Kafka              ``kafka://{first bootstrap}:{port}``  topic
Kinesis            ``kinesis://{region}`` (or the        stream
                   endpoint's host:port when one is
                   given, e.g. an emulator)
Pub/Sub            ``pubsub``                           ``subscription:{project}:{id}``
                                                        or ``topic:{project}:{id}``
local files        ``file``                             absolute path (a glob's folder)
S3 / GCS           ``s3://{bucket}`` / ``gs://{bucket}``  object key (the table's path)
=================  ===================================  ==============================

Kinesis has no entry in the spec yet; its form follows the spec's
``scheme://authority`` + name pattern. Nothing here carries a credential: a URI's
user and password are never part of a name.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    dataset_version_dataset,
    output_statistics_output_dataset,
    schema_dataset,
)

from schemas.base import RegisteredSchema

__all__ = [
    "DatasetRef",
    "TableState",
    "delta_schema_fields",
    "output_statistics",
    "quality_facet",
    "registry_schema_facet",
    "source_dataset",
    "table_dataset",
    "table_facets",
]

SchemaFacet = schema_dataset.SchemaDatasetFacet
Field = schema_dataset.SchemaDatasetFacetFields


@dataclass(frozen=True)
class DatasetRef:
    """A dataset's OpenLineage identity."""

    namespace: str
    name: str


def source_dataset(uri: str) -> DatasetRef:
    """The dataset a ``--source`` URI reads.

    >>> source_dataset("kafka://10.0.0.1:9092,10.0.0.2:9092/tweets")
    DatasetRef(namespace='kafka://10.0.0.1:9092', name='tweets')
    >>> source_dataset("kinesis://telemetry?region=eu-west-1")
    DatasetRef(namespace='kinesis://eu-west-1', name='telemetry')
    >>> source_dataset("pubsub://projects/p/subscriptions/s").name
    'subscription:p:s'
    >>> source_dataset("file:///data/in/*.jsonl")
    DatasetRef(namespace='file', name='/data/in')
    """
    parts = urlsplit(uri)
    scheme, host = parts.scheme.lower(), parts.netloc.rpartition("@")[2]
    if scheme == "kafka":
        first = host.split(",")[0]
        server, _, port = first.rpartition(":")
        return DatasetRef(f"kafka://{server or first}:{port or '9092'}", parts.path.strip("/"))
    if scheme == "kinesis":
        return DatasetRef(_kinesis_namespace(parse_qs(parts.query)), host or parts.path.strip("/"))
    if scheme == "pubsub":
        _, project, kind, name = (host + parts.path).strip("/").split("/", 3)
        return DatasetRef("pubsub", f"{kind.rstrip('s')}:{project}:{name}")
    if scheme == "dlq":
        return table_dataset(uri.split(":", 1)[1].split("?", 1)[0])
    path = unquote(parts.path) if scheme == "file" else uri
    if glob.has_magic(path):
        path = re.split(r"[*?\[]", path, maxsplit=1)[0].rpartition("/")[0] or "/"
    return DatasetRef("file", os.path.abspath(path))


def _kinesis_namespace(query: Mapping[str, list[str]]) -> str:
    endpoint = (query.get("endpoint") or [""])[-1]
    if endpoint:
        return f"kinesis://{urlsplit(endpoint).netloc.rpartition('@')[2]}"
    region = (query.get("region") or [""])[-1] or os.environ.get("AWS_REGION", "")
    return f"kinesis://{region or os.environ.get('AWS_DEFAULT_REGION') or 'unknown-region'}"


def table_dataset(uri: str) -> DatasetRef:
    """The dataset of an output table or folder (a path, ``file://``, ``s3://``, ``gs://``).

    >>> table_dataset("s3://lake/tables/tweets")
    DatasetRef(namespace='s3://lake', name='tables/tweets')
    >>> table_dataset("/lake/tweets/")
    DatasetRef(namespace='file', name='/lake/tweets')
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme in ("", "file") or len(scheme) == 1:  # a path (or a Windows drive letter)
        path = unquote(parts.path) if scheme == "file" else uri
        return DatasetRef("file", os.path.abspath(path).rstrip("/") or "/")
    scheme = {"s3a": "s3", "gcs": "gs"}.get(scheme, scheme)
    bucket = parts.netloc.rpartition("@")[2]
    return DatasetRef(f"{scheme}://{bucket}", parts.path.strip("/"))


def registry_schema_facet(registered: RegisteredSchema) -> SchemaFacet:
    """The fields of a registry subject's schema (Avro record fields or JSON Schema properties).

    >>> from schemas.registry import LocalFileRegistry
    >>> facet = registry_schema_facet(LocalFileRegistry().get("vehicle_telemetry", 1))
    >>> [(f.name, f.type) for f in facet.fields][:2]
    [('vehicle_id', 'string'), ('ts', 'long')]
    """
    if registered.format == "avro":
        return SchemaFacet(fields=_avro_fields(registered.schema))
    return SchemaFacet(fields=_json_fields(registered.schema))


def _avro_fields(record: Mapping[str, Any]) -> list[Field]:
    fields = []
    for number, field in enumerate(record.get("fields", []), start=1):
        kind = field.get("type")
        branches = kind if isinstance(kind, list) else [kind]
        records = [b for b in branches if isinstance(b, dict) and b.get("type") == "record"]
        fields.append(
            Field(
                name=str(field["name"]),
                type="|".join(_avro_type(b) for b in branches),
                description=field.get("doc"),
                ordinal_position=number,
                fields=_avro_fields(records[0]) if records else [],
            )
        )
    return fields


def _avro_type(kind: Any) -> str:
    if isinstance(kind, dict):
        if kind.get("type") == "array":
            return f"array<{_avro_type(kind.get('items'))}>"
        return str(kind.get("type"))
    return str(kind)


def _json_fields(document: Mapping[str, Any]) -> list[Field]:
    fields = []
    for number, (name, spec) in enumerate(document.get("properties", {}).items(), start=1):
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type", "any")
        if kind == "array" and isinstance(spec.get("items"), dict):
            kind = f"array<{spec['items'].get('type', 'any')}>"
        fields.append(
            Field(
                name=str(name),
                type="|".join(kind) if isinstance(kind, list) else str(kind),
                description=spec.get("description"),
                ordinal_position=number,
                fields=_json_fields(spec) if spec.get("type") == "object" else [],
            )
        )
    return fields


def delta_schema_fields(schema_json: Mapping[str, Any]) -> list[Field]:
    """Schema facet fields from a Delta table's schema (its JSON form, Delta's own types).

    >>> delta_schema_fields({"fields": [{"name": "a", "type": "long"},
    ...     {"name": "s", "type": {"type": "struct", "fields": [{"name": "x", "type": "string"}]}},
    ...     {"name": "l", "type": {"type": "array", "elementType": "string"}}]})[2].type
    'array<string>'
    """
    fields = []
    for number, field in enumerate(schema_json.get("fields", []), start=1):
        kind = field["type"]
        nested = kind.get("fields", []) if isinstance(kind, dict) else []
        if isinstance(kind, dict) and kind.get("type") == "array":
            element = kind.get("elementType")
            nested = element.get("fields", []) if isinstance(element, dict) else []
        fields.append(
            Field(
                name=str(field["name"]),
                type=_delta_type(kind),
                ordinal_position=number,
                fields=delta_schema_fields({"fields": nested}),
            )
        )
    return fields


def _delta_type(kind: Any) -> str:
    if not isinstance(kind, dict):
        return str(kind)
    if kind.get("type") == "array":
        return f"array<{_delta_type(kind.get('elementType'))}>"
    if kind.get("type") == "map":
        return f"map<{_delta_type(kind.get('keyType'))},{_delta_type(kind.get('valueType'))}>"
    return str(kind.get("type"))


@dataclass(frozen=True)
class TableState:
    """A Delta table as a run found it: its version and data files (path → bytes)."""

    uri: str
    version: int | None
    files: Mapping[str, int]
    schema_json: Mapping[str, Any] | None

    @classmethod
    def read(cls, uri: str, storage_options: Mapping[str, str] | None = None) -> TableState:
        """The table's state now (version None when it does not exist yet)."""
        import json

        import pyarrow as pa
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(uri, storage_options=dict(storage_options or {}) or None)
        except TableNotFoundError:
            return cls(uri, None, {}, None)
        actions = pa.table(table.get_add_actions(flatten=True)).select(["path", "size_bytes"])
        files = dict(
            zip(*(actions.column(c).to_pylist() for c in actions.column_names), strict=True)
        )
        return cls(uri, table.version(), files, json.loads(table.schema().to_json()))

    def rows_since(
        self, before: TableState, storage_options: Mapping[str, str] | None = None
    ) -> int:
        """Rows the commits after ``before`` wrote (appends' added rows, merges' inserts
        and updates; compactions rewrite rows and are not counted)."""
        from deltalake import DeltaTable

        if self.version is None or self.version == before.version:
            return 0
        start = -1 if before.version is None else before.version
        table = DeltaTable(self.uri, storage_options=dict(storage_options or {}) or None)
        rows = 0
        for entry in table.history(limit=self.version - start):
            if int(entry.get("version", -1)) <= start:
                continue
            metrics = entry.get("operationMetrics") or {}
            if entry.get("operation") == "WRITE":
                rows += int(metrics.get("num_added_rows", 0))
            elif entry.get("operation") == "MERGE":
                rows += int(metrics.get("num_target_rows_inserted", 0))
                rows += int(metrics.get("num_target_rows_updated", 0))
        return rows

    def bytes_since(self, before: TableState) -> int:
        """Bytes of the data files the table holds now that it did not hold at ``before``."""
        return sum(size for path, size in self.files.items() if path not in before.files)


def table_facets(state: TableState) -> dict[str, Any]:
    """The dataset facets of a Delta table: its schema and version, when it exists."""
    if state.schema_json is None:
        return {}
    return {
        "schema": SchemaFacet(fields=delta_schema_fields(state.schema_json)),
        "version": dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=str(state.version)
        ),
    }


def output_statistics(rows: int, size: int) -> Any:
    """The ``outputStatistics`` facet: rows and bytes a run wrote to one output."""
    return output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
        rowCount=rows, size=size
    )


def quality_facet(
    suite: Mapping[str, Any], reports: Sequence[Mapping[str, Any]]
) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet | None:
    """Great Expectations results as ``dataQualityAssertions``: one assertion per
    expectation of ``suite``, failed when any of the run's checked batches failed it.

    ``reports`` are the rows of the quality table (see :func:`transforms.quality.quality_row`)
    of one checked table: each with its ``failures`` (expectation and columns). None
    when nothing was checked.

    >>> suite = {"expectations": [
    ...     {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "vehicle_id"}},
    ...     {"type": "expect_column_values_to_be_between", "kwargs": {"column": "count"}}]}
    >>> failed = {"expectation": "expect_column_values_to_be_between", "columns": "count"}
    >>> facet = quality_facet(suite, [{"failures": []}, {"failures": [failed]}])
    >>> [(a.column, a.success) for a in facet.assertions]
    [('vehicle_id', True), ('count', False)]
    """
    if not reports:
        return None
    failed = {
        (str(f["expectation"]), str(f["columns"])) for r in reports for f in r["failures"] or []
    }
    assertions = []
    for expectation in suite.get("expectations", []):
        kind, columns = str(expectation["type"]), _columns(expectation.get("kwargs") or {})
        assertions.append(
            data_quality_assertions_dataset.Assertion(
                assertion=kind, success=(kind, columns) not in failed, column=columns or None
            )
        )
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(assertions=assertions)


def _columns(kwargs: Mapping[str, Any]) -> str:
    """An expectation's columns as the quality table names them (``a`` or ``a,b``)."""
    names = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    names += list(kwargs.get("column_list", []))
    return ",".join(str(n) for n in names)
