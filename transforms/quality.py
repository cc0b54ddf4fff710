"""Great Expectations checks: suites kept as JSON files, run on Arrow tables and batches.

A suite file is Great Expectations' own JSON form (``{"name", "expectations":
[{"type", "kwargs"}]}``), so suites can be written and reviewed like code and also
opened with GX's tools. :class:`SuiteRunner` builds an ephemeral GX context once
(importing GX takes seconds) and validates tables; :class:`ValidateBatches` runs a
suite on every batch a sink committed, inside the pipeline, and yields one quality
row per batch.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from schemas.errors import ConfigError
from transforms.progress import note
from transforms.record import make_record_id

__all__ = [
    "PACKAGED_SUITES",
    "QUALITY_SCHEMA",
    "QualityReport",
    "SuiteRunner",
    "ValidateBatches",
    "read_suite",
]

PACKAGED_SUITES = Path(__file__).resolve().parent.parent / "schemas" / "expectations"

QUALITY_SCHEMA = pa.schema(
    [
        ("table", pa.string()),
        ("table_version", pa.int64()),
        ("suite", pa.string()),
        ("success", pa.bool_()),
        ("rows", pa.int64()),
        ("evaluated", pa.int64()),
        ("failed", pa.int64()),
        (
            "failures",
            pa.list_(
                pa.struct(
                    [
                        ("expectation", pa.string()),
                        ("columns", pa.string()),
                        ("unexpected_count", pa.int64()),
                    ]
                )
            ),
        ),
        ("validated_at", pa.timestamp("ms", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class Failure:
    """One expectation a table did not meet."""

    expectation: str
    columns: str
    unexpected_count: int | None


@dataclass(frozen=True)
class QualityReport:
    """The outcome of one suite on one table."""

    suite: str
    rows: int
    evaluated: int
    failures: list[Failure] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return not self.failures


def read_suite(path: str | Path) -> dict[str, Any]:
    """A suite file's JSON, checked for the shape GX needs; ConfigError naming the file.

    >>> read_suite(PACKAGED_SUITES / "vehicle_windows.json")["name"]
    'vehicle_windows'
    """
    path = Path(path)
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError("suite", f"cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ConfigError("suite", f"{path} is not JSON: {err}") from None
    if not isinstance(suite, dict) or not isinstance(suite.get("name"), str):
        raise ConfigError("suite", f"{path}: expected an object with a 'name'")
    expectations = suite.get("expectations")
    if not isinstance(expectations, list) or not expectations:
        raise ConfigError("suite", f"{path}: expected a non-empty 'expectations' list")
    for number, item in enumerate(expectations):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise ConfigError("suite", f"{path}: expectation {number} has no 'type'")
    return suite


def _columns(kwargs: dict[str, Any]) -> str:
    names = [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]
    names += list(kwargs.get("column_list", []))
    return ",".join(str(n) for n in names)


class SuiteRunner:
    """Validates Arrow tables against one suite file with Great Expectations.

    Args:
        suite_path: the suite's JSON file.

    Raises:
        ConfigError: the file is unreadable, not a suite, or names an unknown
            expectation type.

    Example:
        >>> import pyarrow as pa
        >>> runner = SuiteRunner(PACKAGED_SUITES / "vehicle_readings.json")
        >>> table = pa.table({"vehicle_id": ["v1"], "ts": [1], "speed_kph": [512.0],
        ...                   "engine_temp_c": [90.0], "lat": [52.5], "lon": [13.4],
        ...                   "geohash": ["u33"], "_record_id": ["r1"]})
        >>> report = runner.validate(table)
        >>> report.success, [(f.expectation, f.columns) for f in report.failures]
        (False, [('expect_column_values_to_be_between', 'speed_kph')])
    """

    def __init__(self, suite_path: str | Path) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        definition = read_suite(suite_path)
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        try:
            self._suite = gx.ExpectationSuite(**definition)
        except Exception as err:  # GX raises several types for unknown or malformed entries
            raise ConfigError("suite", f"{suite_path}: {err}") from None
        asset = context.data_sources.add_pandas("dataplane").add_dataframe_asset("table")
        self._batches = asset.add_batch_definition_whole_dataframe("whole")
        self.name = str(definition["name"])

    def validate(self, table: pa.Table) -> QualityReport:
        """Runs the suite on ``table``; a missing column fails its expectation."""
        frame = table.to_pandas()
        result = self._batches.get_batch(batch_parameters={"dataframe": frame}).validate(
            self._suite
        )
        failures = [
            Failure(
                expectation=str(config.type) if config else "unknown",
                columns=_columns(config.kwargs) if config else "",
                unexpected_count=(item.result or {}).get("unexpected_count"),
            )
            for item in result.results
            if not item.success
            for config in [item.expectation_config]
        ]
        evaluated = int(result.statistics["evaluated_expectations"])
        return QualityReport(self.name, table.num_rows, evaluated, failures)


def quality_row(table_uri: str, version: int, report: QualityReport) -> dict[str, Any]:
    """A row of the quality table, with coordinates that make rewriting it idempotent."""
    now_ms = int(time.time() * 1000)
    return {
        "_record_id": make_record_id("quality", table_uri, report.suite, str(version)),
        "_source": "quality",
        "_stream": table_uri,
        "_partition": report.suite,
        "_position": str(version),
        "_event_time_ms": now_ms,
        "table": table_uri,
        "table_version": version,
        "suite": report.suite,
        "success": report.success,
        "rows": report.rows,
        "evaluated": report.evaluated,
        "failed": len(report.failures),
        "failures": [f.__dict__ for f in report.failures],
        "validated_at": now_ms,
    }


class _ValidateBatchDoFn(beam.DoFn):
    def __init__(self, suite_path: str) -> None:
        self._suite_path = suite_path
        self._runner: SuiteRunner | None = None
        self._passed = Metrics.counter("dataplane.quality", "batches_passed")
        self._failed = Metrics.counter("dataplane.quality", "batches_failed")

    def setup(self) -> None:
        self._runner = SuiteRunner(self._suite_path)

    def process(self, committed: dict[str, Any]) -> Iterator[dict[str, Any]]:
        assert self._runner is not None
        if committed.get("version") is not None:  # None: nothing new was committed
            report = self._runner.validate(committed["batch"])
            (self._passed if report.success else self._failed).inc()
            note("quality_batches", result="passed" if report.success else "failed")
            for failure in report.failures:
                Metrics.counter("dataplane.quality", f"failed.{failure.expectation}").inc()
            yield quality_row(committed["table"], committed["version"], report)


class ValidateBatches(beam.PTransform):
    """Runs a Great Expectations suite on every batch a sink committed.

    The input is a sink's per-batch output carrying ``table``, ``version`` and
    ``batch`` (an Arrow table), as :class:`~transforms.sinks.MergeIntoDelta` yields.
    Batches that committed nothing (``version`` None) are skipped. The GX context
    is built once per worker, in ``setup()``.

    Args:
        suite_path: the suite's JSON file (see :data:`PACKAGED_SUITES`).

    Returns:
        Quality rows (:data:`QUALITY_SCHEMA` plus coordinates), one per batch; write
        them with :class:`~transforms.sinks.WriteToDelta`. Metrics
        ``dataplane.quality/batches_passed``, ``batches_failed`` and
        ``failed.<expectation>`` count the outcomes.

    Raises:
        ConfigError: the suite file is unreadable or malformed (checked at once).

    Example:
        >>> import apache_beam as beam, pyarrow as pa
        >>> batch = pa.table({"vehicle_id": [None], "window_start": [0], "window_end": [1],
        ...                   "count": [3], "avg_speed_kph": [50.0], "min_speed_kph": [40.0],
        ...                   "max_speed_kph": [60.0], "pane_timing": ["ON_TIME"]})
        >>> suite = str(PACKAGED_SUITES / "vehicle_windows.json")
        >>> with beam.Pipeline() as p:
        ...     rows = (p | beam.Create([{"table": "t", "version": 0, "batch": batch}])
        ...               | ValidateBatches(suite))
        ...     _ = rows | beam.Map(lambda r: print(r["success"], r["failures"][0]["columns"]))
        False vehicle_id
    """

    def __init__(self, suite_path: str | Path) -> None:
        super().__init__()
        read_suite(suite_path)
        self._suite_path = str(suite_path)

    def expand(self, committed: beam.PCollection) -> beam.PCollection:
        return committed | "Validate" >> beam.ParDo(_ValidateBatchDoFn(self._suite_path))

    def display_data(self) -> dict[str, Any]:
        return {"suite": self._suite_path}
