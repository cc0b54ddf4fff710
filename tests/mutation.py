"""Mutation testing of the core modules (issue 21): ``python -m tests.mutation``.

Runs mutmut (configured in pyproject.toml's ``[tool.mutmut]``) over one core module
at a time against the fast tests (the core modules' unit tests and doctests, no
services), then prints killed / survived / kill rate per module and writes
``bench/results/mutation.json``. A mutant counts as killed when a test failed or
timed out under it; "no tests" mutants (no fast test runs that code) count against
the module. Survivors judged equivalent are listed, with reasons, in
``tests/MUTATION.md``.

Usage::

    python -m tests.mutation                      # every module (fresh mutants/)
    python -m tests.mutation --module frontier    # one module; repeat for more
    python -m tests.mutation --report             # the table of the last run, no run
    python -m tests.mutation --survivors --module frontier   # only the last survivors again

Each run starts from a fresh ``mutants/`` (mutmut keeps stale copies of changed tests);
``--keep`` reuses it. A run of some modules keeps the other modules' figures in the JSON.

The run is CPU-heavy: it runs niced, one module at a time, with ``--max_children``
test processes (1 by default).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["MODULES", "Module", "ModuleResult", "main", "module_result"]

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
RESULTS = ROOT / "bench" / "results" / "mutation.json"
# Fewer generated schema pairs per mutant for the JSON Schema compatibility properties
# (2,000 take 15 s; a mutant of compat_json runs them hundreds of times).
_ENV = {"COMPAT_JSON_PROFILE": "compat-json-mutation"}

# mutmut's exit codes per mutant (mutmut.stats.status_by_exit_code).
_KILLED = {1, 3}
_TIMEOUT = {36, -24, 24, 152, 255}
_SURVIVED = {0}
_NO_TESTS = {5, 33}


@dataclass(frozen=True)
class Module:
    """One row of the report: a core module, or the position logic inside a module.

    Attributes:
        name: the row's name.
        path: the source file, relative to the repository root.
        functions: mutmut name globs of the functions that make up the row (the
            part after ``<module>.``); all of the module's functions when empty.
    """

    name: str
    path: str
    functions: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def globs(self) -> list[str]:
        """mutmut mutant-name globs selecting this row's mutants."""
        if not self.functions:
            return [f"{self.dotted}.*"]
        return [f"{self.dotted}.{pattern}" for pattern in self.functions]

    def owns(self, mutant: str) -> bool:
        return any(fnmatch.fnmatchcase(mutant, glob) for glob in self.globs())

    def source_hash(self) -> str:
        """The source file's hash: mutant names are only comparable for the same source."""
        return hashlib.sha256((ROOT / self.path).read_bytes()).hexdigest()[:16]


def _method(cls: str, name: str) -> str:
    """The mutant-name glob of a method (mutmut names them ``xǁClassǁmethod__mutmut_N``)."""
    return f"x\u01c1{cls}\u01c1{name}__mutmut_*"


MODULES: tuple[Module, ...] = (
    Module("frontier", "transforms/checkpoint/frontier.py"),
    Module("delta_commit", "transforms/sinks/delta_commit.py"),
    Module("delta_merge", "transforms/sinks/delta_merge.py"),
    Module("windowed", "transforms/featurize/windowed.py"),
    Module("sentiment", "transforms/featurize/sentiment.py"),
    Module("validate", "transforms/validate.py"),
    Module("codecs", "schemas/codecs.py"),
    Module("compat_avro", "schemas/compat_avro.py"),
    Module("compat_json", "schemas/compat_json.py"),
    # The Kafka position logic: start/stop/resume offsets, limits, group offsets forward.
    Module("kafka_partitions", "transforms/sources/kafka_partitions.py"),
    Module("kafka_offsets", "transforms/checkpoint/group_offsets.py"),
    # The Kinesis position logic: restrictions, the tracker, the plan (shards, parents, start
    # and resume positions) and the iterator a position is read from. The reading loop
    # (GetRecords, pacing, backoff) is tested against kinesalite in the integration tests.
    Module("kinesis_shards", "transforms/sources/kinesis_shards.py"),
    Module(
        "kinesis (positions)",
        "transforms/sources/kinesis.py",
        (
            _method("_ShardRestrictions", "*"),
            _method("_PlanDoFn", "*"),
            _method("_ReadShardsDoFn", "_iterator"),
            "x__list_shards__mutmut_*",
        ),
    ),
)


@dataclass(frozen=True)
class ModuleResult:
    """What the mutants of one module did."""

    module: Module
    killed: int
    timeout: int
    survived: list[str]
    no_tests: list[str]
    other: list[str]
    seconds: float | None = None
    source_sha256: str = ""

    @property
    def total(self) -> int:
        return self.killed + self.timeout + len(self.survived + self.no_tests + self.other)

    @property
    def detected(self) -> int:
        return self.killed + self.timeout

    @property
    def rate(self) -> float:
        return self.detected / self.total if self.total else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "module": self.module.name,
            "path": self.module.path,
            "functions": list(self.module.functions),
            "total": self.total,
            "killed": self.killed,
            "timeout": self.timeout,
            "survived": self.survived,
            "no_tests": self.no_tests,
            "other": self.other,
            "kill_rate": round(self.rate, 4),
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "source_sha256": self.source_sha256 or self.module.source_hash(),
        }


def _exit_codes(module: Module) -> dict[str, int | None]:
    meta = MUTANTS / (module.path + ".meta")
    if not meta.exists():
        return {}
    codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    return {name: code for name, code in codes.items() if module.owns(name)}


def module_result(module: Module, seconds: float | None = None) -> ModuleResult:
    """Tallies the mutants of ``module`` from mutmut's meta file of the last run."""
    codes = _exit_codes(module)
    by_kind: dict[str, list[str]] = {"survived": [], "no_tests": [], "other": []}
    killed = timeout = 0
    for name, code in sorted(codes.items()):
        if code in _KILLED:
            killed += 1
        elif code in _TIMEOUT:
            timeout += 1
        elif code in _SURVIVED:
            by_kind["survived"].append(name)
        elif code in _NO_TESTS:
            by_kind["no_tests"].append(name)
        else:
            by_kind["other"].append(f"{name} (exit {code})")
    return ModuleResult(
        module, killed, timeout, seconds=seconds, source_sha256=module.source_hash(), **by_kind
    )


def _mutmut(globs: Sequence[str], max_children: int, log: Path) -> int:
    command = [
        "nice",
        "-n",
        "10",
        str(Path(sys.executable).parent / "mutmut"),
        "run",
        "--max-children",
        str(max_children),
        *globs,
    ]
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(
            command, cwd=ROOT, env={**os.environ, **_ENV}, stdout=out, stderr=subprocess.STDOUT
        )
    return done.returncode


def run(modules: Iterable[Module], *, max_children: int, fresh: bool) -> list[ModuleResult]:
    """Runs mutmut over each module in turn; returns the tallies."""
    if fresh and MUTANTS.exists():
        shutil.rmtree(MUTANTS)
    MUTANTS.mkdir(exist_ok=True)
    log = MUTANTS / "mutation.log"
    results = []
    for module in modules:
        started = time.monotonic()
        print(f"mutating {module.name} ({module.path}) ...", flush=True)
        code = _mutmut(module.globs(), max_children, log)
        if code != 0:
            raise SystemExit(f"mutmut failed on {module.name} (exit {code}); see {log}")
        result = module_result(module, time.monotonic() - started)
        print(f"  {_row(result)}", flush=True)
        results.append(result)
        write_json([result], None, RESULTS)  # each module's row as soon as it is known
    return results


def rerun_survivors(modules: Iterable[Module], *, max_children: int) -> list[ModuleResult]:
    """Runs again only the mutants the last run left alive, after tests were added.

    The mutants the last run killed stay killed (tests are only ever added), so the
    new tally is the old kills plus the survivors killed now. Refused for a module
    whose source changed since the last run (its mutants may be numbered differently).
    """
    last = {row["module"]: row for row in json.loads(RESULTS.read_text())["modules"]}
    MUTANTS.mkdir(exist_ok=True)
    # mutmut traces only new tests incrementally: a changed test would keep the functions
    # it reached before. Trace every test again.
    (MUTANTS / "mutmut-stats.json").unlink(missing_ok=True)
    log = MUTANTS / "mutation.log"
    results = []
    for module in modules:
        row = last.get(module.name)
        if row is None or row.get("source_sha256") != module.source_hash():
            raise SystemExit(f"{module.name}: no last run of this source; run it in full")
        names = row["survived"] + row["no_tests"]
        started = time.monotonic()
        print(f"re-running {len(names)} survivors of {module.name} ...", flush=True)
        if names and _mutmut(names, max_children, log) != 0:
            raise SystemExit(f"mutmut failed on {module.name}; see {log}")
        codes = _exit_codes(module)
        again = {n: codes.get(n) for n in names}
        result = ModuleResult(
            module,
            killed=row["killed"] + sum(c in _KILLED for c in again.values()),
            timeout=row["timeout"] + sum(c in _TIMEOUT for c in again.values()),
            survived=sorted(n for n, c in again.items() if c in _SURVIVED),
            no_tests=sorted(n for n, c in again.items() if c in _NO_TESTS),
            other=row["other"]
            + sorted(
                f"{n} (exit {c})"
                for n, c in again.items()
                if c not in _KILLED | _TIMEOUT | _SURVIVED | _NO_TESTS
            ),
            seconds=(row["seconds"] or 0) + time.monotonic() - started,
        )
        print(f"  {_row(result)}", flush=True)
        results.append(result)
        write_json([result], None, RESULTS)
    return results


def _row(result: ModuleResult) -> str:
    seconds = "" if result.seconds is None else f"{result.seconds:7.0f}s"
    return (
        f"{result.module.name:<30} {result.detected:>5}/{result.total:<5} "
        f"{100 * result.rate:6.1f}%  survived {len(result.survived):>3}  "
        f"no tests {len(result.no_tests):>3}  {seconds}"
    )


def table(results: Sequence[ModuleResult]) -> str:
    """The per-module table: killed (incl. timeouts) / total, rate, survivors."""
    header = f"{'module':<30} {'killed/total':>11}  {'rate':>6}"
    lines = [header, "-" * 86, *(_row(r) for r in results)]
    detected, total = sum(r.detected for r in results), sum(r.total for r in results)
    if total:
        lines.append("-" * 86)
        lines.append(f"{'all':<30} {detected:>5}/{total:<5} {100 * detected / total:6.1f}%")
    return "\n".join(lines)


def write_json(results: Sequence[ModuleResult], seconds: float | None, path: Path) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r.as_json() for r in results]
    previous: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if previous:  # a run of some modules keeps the other modules' last figures
        before = {row["module"]: row for row in previous["modules"]}
        for row in rows:
            if row["seconds"] is None and row["module"] in before:
                row["seconds"] = before[row["module"]].get("seconds")
        ran = {row["module"] for row in rows}
        kept = [row for row in previous["modules"] if row["module"] not in ran]
        order = [m.name for m in MODULES]
        rows = sorted(kept + rows, key=lambda row: order.index(row["module"]))
    document = {
        "tool": "mutmut",
        "command": "python -m tests.mutation",
        "commit": commit,
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 1) if seconds is not None else previous.get("seconds"),
        "modules": rows,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _selected(names: Sequence[str] | None) -> list[Module]:
    if not names:
        return list(MODULES)
    by_name = {m.name.split(" ")[0]: m for m in MODULES}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown module {unknown}; choose from {sorted(by_name)}")
    return [by_name[n] for n in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("--module", action="append", help="a module's short name (repeatable)")
    parser.add_argument("--max_children", type=int, default=1, help="test processes (1)")
    parser.add_argument("--keep", action="store_true", help="reuse mutants/ of the last run")
    parser.add_argument("--report", action="store_true", help="tally the last run; run nothing")
    parser.add_argument(
        "--survivors", action="store_true", help="re-run only the last run's survivors"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    args = parser.parse_args(argv)
    modules = _selected(args.module)
    started = time.monotonic()
    if args.report:  # tallies mutants/ as the last (possibly interrupted) run left it
        results, seconds = [module_result(m) for m in modules], None
        write_json([r for r in results if r.total], None, args.json)
    elif args.survivors:
        results = rerun_survivors(modules, max_children=args.max_children)
        seconds = time.monotonic() - started
    else:
        results = run(modules, max_children=args.max_children, fresh=not args.keep)
        seconds = time.monotonic() - started
    print(table(results))
    if seconds is not None:
        print(f"whole run: {seconds / 60:.1f} min")
        write_json(results, seconds, args.json)
        print(f"wrote {args.json.relative_to(ROOT) if args.json.is_absolute() else args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
