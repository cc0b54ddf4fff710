"""The pre-commit hook runs ``dataplane schemas check`` over a repository of subjects.

The hook's own entry and arguments (from ``.pre-commit-hooks.yaml``) are run as
pre-commit runs them, in a repository holding a copy of a packaged subject: it
passes as it is and fails once a version that breaks the subject's level is added.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SUBJECT = ROOT / "schemas" / "vehicle_telemetry"


def _hook() -> dict:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = [h for h in hooks if h["id"] == "dataplane-schemas-check"]
    return hook


def _run_hook(repository: Path) -> subprocess.CompletedProcess[str]:
    hook = _hook()
    command = [*shlex.split(hook["entry"]), *hook.get("args", [])]
    # pre-commit installs the package, whose console script is `dataplane`.
    command[0] = str(Path(sys.executable).parent / command[0])
    return subprocess.run(command, cwd=repository, capture_output=True, text=True, timeout=300)


def test_the_hook_is_a_well_formed_pre_commit_manifest_entry() -> None:
    hook = _hook()
    assert {"id", "name", "entry", "language"} <= hook.keys()
    assert hook["language"] == "python"  # pre-commit installs this repository's package
    assert hook["pass_filenames"] is False  # the check reads every subject itself
    assert shlex.split(hook["entry"])[:3] == ["dataplane", "schemas", "check"]


def test_the_hook_passes_a_compatible_repository_and_refuses_a_breaking_version(
    tmp_path: Path,
) -> None:
    subjects = tmp_path / "schemas" / "vehicle_telemetry"
    subjects.mkdir(parents=True)
    for name in ("1.avsc", "2.avsc", "config.json"):
        shutil.copy(SUBJECT / name, subjects / name)

    passed = _run_hook(tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    shutil.copy(SUBJECT / "candidates" / "incompatible.avsc", subjects / "3.avsc")
    refused = _run_hook(tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "vehicle_telemetry" in refused.stdout + refused.stderr
