"""``dataplane dlq replay``: re-process dead letters through the pipeline they came from.

After a fix (a schema version that accepts them, a featurizer bug fixed), the
letters are read back from the dead-letter table with their original
coordinates and run through the pipeline's own steps. Rows keep their original
``record_id``: the output's record-id check makes a replay idempotent, however
often it runs. Letters that fail again go to a table of this replay's own
(``--failures``), and every replayed letter is marked in the dead-letter table
with ``replay_id``, ``replayed_at_ms`` and ``replay_outcome`` (``written`` or
``failed again: <reason>``). Letters already written are skipped next time.

    dataplane dlq replay sentiment --from /tmp/lake/dead_letters \\
        --error_type SchemaViolation -- --output /tmp/lake/tweets --registry ./fixed-schemas
"""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
import pyarrow.compute as pc

from runners.cli.pipelines import pipeline_module
from runners.cli.tables import add_storage_option_flag
from schemas.errors import ConfigError
from transforms.deadletter import REPLAYED_OK, mark_replayed
from transforms.sources.deadletters import letters_to_replay

__all__ = ["ReplayReport", "add_dlq_command", "replay"]


@dataclass
class ReplayReport:
    """What one replay did."""

    replay_id: str
    letters: int = 0
    written: int = 0
    failed_again: dict[str, int] = field(default_factory=dict)
    failures_table: str = ""


def add_dlq_command(groups: Any) -> None:
    """Adds ``dlq replay`` to the ``dataplane`` parser."""
    dlq = groups.add_parser("dlq", help="dead-letter tools", description=__doc__)
    commands = dlq.add_subparsers(dest="command", required=True, metavar="SUBCOMMAND")
    run = commands.add_parser(
        "replay",
        help="re-process dead letters through their pipeline, idempotently",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("pipeline", metavar="PIPELINE", help="the pipeline the letters came from")
    run.add_argument("--from", dest="table", required=True, help="the dead-letter table")
    run.add_argument("--error_type", action="append", default=[], help="only this reason")
    run.add_argument("--stage", action="append", default=[], help="only this stage")
    run.add_argument(
        "--failures", help="table for letters that fail again (default: TABLE_replays/ID)"
    )
    add_storage_option_flag(run)
    run.set_defaults(run=_replay_command, takes_flags=True)
    run.epilog = (
        "Everything after -- goes to the pipeline (--output at least). The tables are opened "
        "with the pipeline's storage flags (--storage_option, --storage_config_file, --s3_*); "
        "--storage_option items before -- are passed on to the pipeline too."
    )


def _replay_command(args: argparse.Namespace) -> int:
    flags = [*args.extra, *(f"--storage_option={item}" for item in args.storage_option)]
    report = replay(
        args.pipeline,
        args.table,
        flags,
        error_types=args.error_type,
        stages=args.stage,
        failures=args.failures,
    )
    if report.letters == 0:
        print(f"nothing to replay in {args.table}")
        return 0
    again = ", ".join(f"{k} {v}" for k, v in sorted(report.failed_again.items())) or "none"
    print(
        f"replay {report.replay_id}: {report.letters} letters, {report.written} written to "
        f"the output, failed again: {again} (in {report.failures_table})"
    )
    return 0


def replay(
    pipeline: str,
    table: str,
    flags: Sequence[str],
    *,
    error_types: Sequence[str] = (),
    stages: Sequence[str] = (),
    failures: str | None = None,
) -> ReplayReport:
    """Replays the chosen letters of ``table`` through ``pipeline`` and marks them."""
    module = pipeline_module(pipeline)
    if not getattr(module, "REPLAYABLE", False):
        raise ConfigError(
            "PIPELINE",
            f"{pipeline} cannot replay dead letters: its outputs are aggregates that replayed "
            "records alone would not recompute",
        )
    output = _flag(flags, "--output")
    storage = _storage(flags)
    letters = letters_to_replay(
        table, storage_options=storage, error_types=error_types, stages=stages
    )
    report = ReplayReport(uuid.uuid4().hex[:12], letters.num_rows)
    if letters.num_rows == 0:
        return report
    report.failures_table = failures or f"{table.rstrip('/')}_replays/{report.replay_id}"
    query = urlencode(
        {k: ",".join(v) for k, v in (("error_type", error_types), ("stage", stages)) if v}
    )
    source = f"dlq:{table}" + (f"?{query}" if query else "")
    module.run(
        [
            *flags,
            f"--source={source}",
            f"--dlq={report.failures_table}",
            "--bounded",
            "--no_resume",
        ]
    )
    outcomes = _outcomes(letters["_record_id"], output, report, storage)
    mark_replayed(table, outcomes, report.replay_id, storage)
    return report


def _storage(flags: Sequence[str]) -> dict[str, str] | None:
    """The storage options the pipeline itself reads from ``flags``, for the same tables."""
    from apache_beam.options.pipeline_options import PipelineOptions

    from beam_pipelines.launch.options import storage_options_from

    return storage_options_from(PipelineOptions(list(flags)))


def _flag(flags: Sequence[str], name: str) -> str:
    for index, flag in enumerate(flags):
        if flag.startswith(f"{name}="):
            return flag.split("=", 1)[1]
        if flag == name and index + 1 < len(flags):
            return flags[index + 1]
    raise ConfigError(name, "required after --: the output table the pipeline writes")


def _ids_in(table: str, ids: pa.Array, storage: dict[str, str] | None) -> set[str]:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        dataset = DeltaTable(table, storage_options=storage).to_pyarrow_dataset()
    except TableNotFoundError:
        return set()
    found = dataset.to_table(columns=["_record_id"], filter=pc.field("_record_id").isin(ids))
    return set(found["_record_id"].to_pylist())


def _outcomes(
    ids: pa.ChunkedArray, output: str, report: ReplayReport, storage: dict[str, str] | None
) -> dict[str, str]:
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    wanted = ids.combine_chunks()
    written = _ids_in(output, wanted, storage)
    try:
        failed = DeltaTable(report.failures_table, storage_options=storage).to_pyarrow_table(
            columns=["_record_id", "error_type"]
        )
        reasons = dict(zip(*(failed[c].to_pylist() for c in failed.column_names), strict=True))
    except TableNotFoundError:
        reasons = {}
    outcomes = {}
    for record_id in wanted.to_pylist():
        if record_id in written:
            outcomes[record_id] = REPLAYED_OK
            report.written += 1
        else:
            reason = reasons.get(record_id, "not written")
            outcomes[record_id] = f"failed again: {reason}"
            report.failed_again[reason] = report.failed_again.get(reason, 0) + 1
    return outcomes
