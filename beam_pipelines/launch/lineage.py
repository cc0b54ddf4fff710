"""OpenLineage events of a run: START, RUNNING (streaming), then COMPLETE or FAIL.

Where events go: ``--lineage`` (``http(s)://HOST:PORT`` of a lineage service such
as Marquez, ``file:PATH`` to append one JSON event per line, or ``console``), or
else the OpenLineage client's own configuration (``openlineage.yml`` in the
working directory or ``~/.openlineage``, ``$OPENLINEAGE_CONFIG``,
``OPENLINEAGE_URL``, ``OPENLINEAGE__TRANSPORT__*`` variables). With neither, a run
sends nothing. ``OPENLINEAGE_DISABLED=true`` turns it off.

Each event names the job (``--lineage_namespace``; the name is ``--app_id`` or the
pipeline's), its input (the ``--source``, with the schema of the registry subject
records are validated against) and every output table, the dead-letter table
among them (with its Delta schema and version; COMPLETE adds the rows and bytes
the run wrote). Telemetry's output carries the Great Expectations results as a
``dataQualityAssertions`` facet. No event carries a setting, a URI's user or
password, or a record. Sending is best effort: a lineage service that cannot be
reached is reported on stderr once and never stops a run.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    documentation_dataset,
    error_message_run,
    job_type_job,
    processing_engine_run,
)

from beam_pipelines.launch.lineage_config import lineage_configured
from beam_pipelines.launch.lineage_datasets import (
    DatasetRef,
    TableState,
    output_statistics,
    quality_facet,
    registry_schema_facet,
    source_dataset,
    table_dataset,
    table_facets,
)
from beam_pipelines.launch.options import (
    DeltaSinkOptions,
    RegistryOptions,
    RunOptions,
    SourceOptions,
    open_registry_from,
    storage_options_from,
)
from beam_pipelines.launch.periodic import every
from schemas.errors import ConfigError

__all__ = [
    "PRODUCER",
    "Output",
    "RunLineage",
    "lineage_client",
    "plan_lineage",
    "running_events",
]

PRODUCER = "urn:beam-dataplane"
_RETRY = {
    "total": 2,
    "read": 2,
    "connect": 2,
    "backoff_factor": 0.3,
    "status_forcelist": [500, 502, 503, 504],
    "allowed_methods": ["POST"],
}


def lineage_client(target: str | None) -> OpenLineageClient | None:
    """The client a run sends its events through; None when lineage is not configured.

    Raises:
        ConfigError: naming ``--lineage`` when its value is none of the forms above.
    """
    if target:
        transport = _transport(target.strip())
        if transport["type"] == "console":
            _show_console_events()
        return OpenLineageClient(config={"transport": transport})
    if os.environ.get("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return None
    if lineage_configured():
        return OpenLineageClient()
    return None


def _show_console_events() -> None:
    """The console transport logs each event at INFO, below Python's default level: show
    them on stderr, one JSON event per line."""
    import logging

    logger = logging.getLogger("openlineage.client.transport.console")
    if not any(getattr(h, "_dataplane", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._dataplane = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _transport(target: str) -> dict[str, Any]:
    if target == "console":
        return {"type": "console"}
    if target.startswith("file:"):
        path = target.removeprefix("file:").removeprefix("//")
        if not path:
            raise ConfigError("--lineage", "expected file:PATH, got no path")
        return {"type": "file", "log_file_path": str(Path(path).expanduser()), "append": True}
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.hostname:
        if parts.username or parts.password:
            raise ConfigError(
                "--lineage",
                "a URL with a user or password would travel with the job's options; give an "
                "API key as OPENLINEAGE__TRANSPORT__AUTH__API_KEY in the environment instead",
            )
        # Two retries (the client's default, five, holds a run for ~10 s per event
        # while the service is down).
        return {"type": "http", "url": target, "retry": dict(_RETRY)}
    raise ConfigError(
        "--lineage", "expected http(s)://HOST[:PORT] of a lineage service, file:PATH or console"
    )


@dataclass(frozen=True)
class Output:
    """One output of the run: its flag, URI and whether it is a Delta table."""

    flag: str
    uri: str
    delta: bool


@dataclass
class RunLineage:
    """The events of one run, sent through ``client``.

    Args:
        client: where events go.
        namespace: the job namespace.
        job_name: the job's name within it.
        streaming: a streaming run (RUNNING events, processing type STREAMING).
        runner: the runner's name (a run facet).
        source: the ``--source`` URI (None: no input named).
        subject: the registry subject and version of the source's records, if known.
        outputs: every output.
        storage_options: how to open the output tables (never sent).
        suite: the Great Expectations suite the pipeline checks committed batches with,
            if any; the results come from the run's rows of the quality table
            (the ``quality_output`` output).
    """

    client: OpenLineageClient
    namespace: str
    job_name: str
    streaming: bool
    runner: str
    source: str | None
    subject: Any = None  # schemas.base.RegisteredSchema
    outputs: Sequence[Output] = ()
    storage_options: Mapping[str, str] | None = field(default=None, repr=False)
    suite: Mapping[str, Any] | None = None
    run_id: str = field(default_factory=lambda: str(_uuid7()))
    _before: dict[str, TableState] = field(default_factory=dict)
    _started_ms: int = 0
    _warned: bool = False

    def start(self) -> None:
        """Sends START (and notes each table's version, to count what the run adds)."""
        self._started_ms = int(datetime.now(timezone.utc).timestamp() * 1000)
        for output in self.outputs:
            if output.delta:
                self._before[output.uri] = self._state(output)
        self._emit(RunState.START, outputs=self._outputs(final=False))

    def running(self) -> None:
        """Sends RUNNING with the rows and bytes written so far."""
        self._emit(RunState.RUNNING, outputs=self._outputs(final=True))

    def complete(self) -> None:
        """Sends COMPLETE, with the quality checks the run made (its quality table's rows)."""
        self._emit(RunState.COMPLETE, outputs=self._outputs(final=True, quality=True))

    def _quality_reports(self) -> dict[str, list[dict[str, Any]]]:
        """The rows the run added to a quality table (``--quality_output``), by checked table."""
        reports: dict[str, list[dict[str, Any]]] = {}
        if self.suite is None:
            return reports
        for output in self.outputs:
            if output.flag != "quality_output":
                continue
            try:
                rows = _rows_validated_since(output.uri, self._started_ms, self.storage_options)
            except Exception:  # no table (nothing was checked) or unreadable: no facet
                continue
            for row in rows:
                reports.setdefault(str(row["table"]), []).append(row)
        return reports

    def fail(self, error: BaseException) -> None:
        """Sends FAIL with the error's class and message (messages carry no secrets);
        ABORT when the run was interrupted."""
        if isinstance(error, KeyboardInterrupt):
            self._emit(RunState.ABORT, outputs=self._outputs(final=True))
            return
        facet = error_message_run.ErrorMessageRunFacet(
            message=f"{type(error).__name__}: {error}", programmingLanguage="python"
        )
        self._emit(RunState.FAIL, outputs=self._outputs(final=True), facets={"errorMessage": facet})

    def _state(self, output: Output) -> TableState:
        try:
            return TableState.read(output.uri, self.storage_options)
        except Exception:  # an unreachable store: the event still names the table
            return TableState(output.uri, None, {}, None)

    def _outputs(self, *, final: bool, quality: bool = False) -> list[OutputDataset]:
        datasets = []
        reports = self._quality_reports() if quality else {}
        for output in self.outputs:
            ref = table_dataset(output.uri)
            facets: dict[str, Any] = {}
            output_facets: dict[str, Any] = {}
            if output.delta:
                now = self._state(output) if final else self._before[output.uri]
                facets = table_facets(now)
                if final:
                    before = self._before.get(output.uri) or TableState(output.uri, None, {}, None)
                    rows = _rows_since(now, before, self.storage_options)
                    output_facets["outputStatistics"] = output_statistics(
                        rows, now.bytes_since(before)
                    )
            assertions = quality_facet(self.suite or {}, reports.get(output.uri, []))
            if assertions is not None:
                facets["dataQualityAssertions"] = assertions
            datasets.append(
                OutputDataset(ref.namespace, ref.name, facets=facets, outputFacets=output_facets)
            )
        return datasets

    def _inputs(self) -> list[InputDataset]:
        if not self.source:
            return []
        ref: DatasetRef = source_dataset(self.source)
        facets: dict[str, Any] = {}
        if self.subject is not None:
            facets["schema"] = registry_schema_facet(self.subject)
            facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
                description=f"records validated against registry subject {self.subject.subject} "
                f"version {self.subject.version} (schema id {self.subject.schema_id})"
            )
        return [InputDataset(ref.namespace, ref.name, facets=facets)]

    def _emit(
        self,
        state: RunState,
        *,
        outputs: list[OutputDataset],
        facets: Mapping[str, Any] | None = None,
    ) -> None:
        event = RunEvent(
            eventType=state,
            eventTime=datetime.now(timezone.utc).isoformat(),
            run=Run(runId=self.run_id, facets={**self._run_facets(), **(facets or {})}),
            job=Job(namespace=self.namespace, name=self.job_name, facets=self._job_facets()),
            inputs=self._inputs(),
            outputs=outputs,
            producer=PRODUCER,
        )
        try:
            with _quiet_retries():
                self.client.emit(event)
        except Exception as err:  # best effort: lineage never stops a run
            if not self._warned:
                self._warned = True
                print(f"warning: OpenLineage event not sent: {err}", file=sys.stderr)

    def _run_facets(self) -> dict[str, Any]:
        import apache_beam

        return {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=apache_beam.__version__,
                name=f"Apache Beam ({self.runner})",
                openlineageAdapterVersion=_our_version(),
            )
        }

    def _job_facets(self) -> dict[str, Any]:
        return {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="STREAMING" if self.streaming else "BATCH",
                integration="APACHE_BEAM",
                jobType="JOB",
            )
        }


def _rows_validated_since(
    uri: str, since_ms: int, options: Mapping[str, str] | None
) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    table = DeltaTable(uri, storage_options=dict(options or {}) or None).to_pyarrow_table(
        columns=["table", "failures", "validated_at"]
    )
    since = pa.scalar(since_ms, pa.timestamp("ms", tz="UTC"))
    return table.filter(pc.greater_equal(table.column("validated_at"), since)).to_pylist()


def _rows_since(now: TableState, before: TableState, options: Mapping[str, str] | None) -> int:
    try:
        return now.rows_since(before, options)
    except Exception:  # history unreadable: no count rather than no event
        return 0


def _our_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("beam-dataplane")
    except PackageNotFoundError:
        return "unknown"


def _uuid7() -> uuid.UUID:
    """A time-ordered run id (UUIDv7), as the OpenLineage spec recommends."""
    from openlineage.client.uuid import generate_new_uuid

    return generate_new_uuid()


@contextlib.contextmanager
def running_events(lineage: RunLineage | None, every_s: float) -> Iterator[None]:
    """Sends RUNNING every ``every_s`` on a thread of its own while the block runs."""
    if lineage is None or every_s <= 0:
        yield
        return
    with every(every_s, lineage.running, name="lineage-running"):
        yield


def plan_lineage(
    client: OpenLineageClient | None,
    options: PipelineOptions,
    pipeline: beam.Pipeline,
    *,
    job_name: str,
    streaming: bool,
    outputs: Mapping[str, bool],
) -> RunLineage | None:
    """The lineage of the run ``pipeline`` (built) is about to make; None without a client.

    ``outputs`` names the output flags (without ``--``) and whether each is a Delta
    table. The input's subject is the one the pipeline's decoding step validates
    against (from its display data).
    """
    if client is None:
        return None
    every = options.get_all_options()
    run = options.view_as(RunOptions)
    return RunLineage(
        client,
        namespace=run.lineage_namespace or os.environ.get("OPENLINEAGE_NAMESPACE") or "dataplane",
        job_name=options.view_as(DeltaSinkOptions).app_id or job_name,
        streaming=streaming,
        runner=type(pipeline.runner).__name__,
        source=options.view_as(SourceOptions).source,
        subject=_subject(options, pipeline),
        outputs=[
            Output(flag, str(every[flag]), delta)
            for flag, delta in outputs.items()
            if every.get(flag)
        ],
        storage_options=storage_options_from(options),
        suite=_suite(every.get("suite")),
    )


def _subject(options: PipelineOptions, pipeline: beam.Pipeline) -> Any:
    """The registered schema the pipeline validates records against, if it names one."""
    found: list[tuple[str, Any]] = []

    class _Finder(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node: Any) -> None:
            self.visit_transform(node)

        def visit_transform(self, node: Any) -> None:
            shown = _display(node.transform)
            if shown.get("subject"):
                found.append((str(shown["subject"]), shown.get("version") or "latest"))

    pipeline.visit(_Finder())
    if not found:
        return None
    subject, version = found[0]
    try:
        return open_registry_from(options.view_as(RegistryOptions)).get(subject, version)
    except Exception:  # the registry went away since the build: name the input without it
        return None


def _display(transform: Any) -> dict[str, Any]:
    try:
        shown = transform.display_data() if transform is not None else {}
    except Exception:
        return {}
    return shown if isinstance(shown, dict) else {}


def _suite(path: Any) -> Mapping[str, Any] | None:
    if not path:
        return None
    from transforms.quality import read_suite

    try:
        return read_suite(str(path))
    except ConfigError:
        return None


@contextlib.contextmanager
def _quiet_retries() -> Iterator[None]:
    """urllib3 logs a warning per retry of an unreachable lineage service; the run reports
    the failure once itself."""
    import logging

    pool = logging.getLogger("urllib3.connectionpool")
    level = pool.level
    pool.setLevel(logging.ERROR)
    try:
        yield
    finally:
        pool.setLevel(level)
