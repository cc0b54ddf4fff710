"""The packages import one way (pyproject.toml's [tool.importlinter] contracts):
runners, then beam_pipelines, then transforms, then schemas, and in order inside each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_contract_is_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_an_import_against_the_layers_is_found(tmp_path):
    """The same contracts over a copy of a package that imports upward: broken."""
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    start = config.index("[tool.importlinter]")
    contracts = tmp_path / "contracts.toml"
    contracts.write_text(config[start:], encoding="utf-8")
    for package in ("schemas", "transforms", "beam_pipelines", "runners"):
        (tmp_path / package).symlink_to(ROOT / package)
    # schemas is the bottom layer; give a copy of it a module importing runners.
    (tmp_path / "schemas").unlink()
    copy = tmp_path / "schemas"
    copy.mkdir()
    for module in (ROOT / "schemas").glob("*.py"):
        (copy / module.name).write_text(module.read_text(encoding="utf-8"), encoding="utf-8")
    (copy / "upward.py").write_text("import runners.cli.main\n", encoding="utf-8")
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--config", str(contracts), "--no-cache"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-2000:]
    assert "schemas.upward -> runners.cli.main" in done.stdout
