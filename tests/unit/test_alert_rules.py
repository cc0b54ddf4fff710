"""The Prometheus alert rules pass ``promtool`` and speak of metrics the endpoint serves.

``promtool`` comes with Debian's ``prometheus`` package; where it is absent the
promtool tests are skipped with that reason.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from beam_pipelines.launch.metrics_http import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dataplane.json"

_PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    _PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install prometheus)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert _PROMTOOL is not None
    return subprocess.run(
        [_PROMTOOL, *args], capture_output=True, text=True, timeout=120, cwd=RULES.parent
    )


@needs_promtool
def test_the_rules_pass_promtool_check() -> None:
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout


@needs_promtool
def test_the_rule_tests_fire_each_alert_on_synthetic_series() -> None:
    done = _promtool("test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_a_rule_test_fails_when_the_lag_alert_cannot_fire(tmp_path: Path) -> None:
    """The lag test is not vacuous: with a threshold no series reaches, it fails."""
    rules = RULES.read_text().replace(
        "deriv(dataplane_source_lag_records[5m]) > 0",
        "deriv(dataplane_source_lag_records[5m]) > 1e9",
    )
    assert rules != RULES.read_text()
    (tmp_path / "alerts.yml").write_text(rules)
    (tmp_path / "alerts_test.yml").write_text(RULE_TESTS.read_text())
    done = subprocess.run(
        [str(_PROMTOOL), "test", "rules", "alerts_test.yml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert "DataplaneSourceLagGrowing" in done.stdout + done.stderr


def _served_names() -> set[str]:
    names = {"dataplane_watermark_delay_seconds"}
    for family in FAMILIES.values():
        if family.kind == "counter":
            names.add(f"{family.name}_total")
        elif family.kind == "histogram":
            names |= {f"{family.name}_{part}" for part in ("bucket", "sum", "count")}
        else:
            names.add(family.name)
    return names


def _metric_names(expression: str) -> set[str]:
    return set(re.findall(r"\bdataplane_[a-z_]+", expression))


def test_every_metric_the_rules_use_is_served() -> None:
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    used = set().union(*(_metric_names(rule["expr"]) for rule in rules))
    assert used and used <= _served_names(), used - _served_names()


def test_every_metric_the_dashboard_plots_is_served() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    used = set().union(*(_metric_names(e) for e in expressions))
    assert len(expressions) >= 8
    assert used <= _served_names(), used - _served_names()
    # Every family shows somewhere on the dashboard.
    plotted = {re.sub(r"_(total|bucket|sum|count)$", "", name) for name in used}
    assert {family.name for family in FAMILIES.values()} <= plotted


@needs_promtool
def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel's query, Grafana's variables filled in, passes promtool as a recording rule."""
    dashboard = json.loads(DASHBOARD.read_text())
    filled = {"$job": ".*", "$instance": ".*", "$__rate_interval": "5m", "$__range": "1h"}
    rules = []
    for number, panel in enumerate(dashboard["panels"]):
        for target in panel["targets"]:
            expression = target["expr"]
            for variable, value in filled.items():
                expression = expression.replace(variable, value)
            rules.append(
                {"record": f"dashboard:panel{number}:{target['refId']}", "expr": expression}
            )
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = _promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout
