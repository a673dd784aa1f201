"""deploy/prometheus: promtool accepts the config and the rules, and the rules' unit tests pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROM = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")

# Loud on purpose: CI installs it (.ci/run), so a skip here means a broken set-up.
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="PROMTOOL NOT FOUND: apt-get install prometheus (CI installs it); rule checks NOT RUN"
)


def promtool(*args: str) -> str:
    out = subprocess.run([PROMTOOL, *args], cwd=PROM, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


@needs_promtool
def test_config_is_valid() -> None:
    assert "SUCCESS" in promtool("check", "config", "prometheus.yml")


@needs_promtool
def test_rules_are_valid() -> None:
    assert "SUCCESS: 10 rules found" in promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_rules_fire_when_and_only_when_expected() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts.test.yml")


def test_every_required_alert_exists_and_is_tested() -> None:
    import yaml

    rules = yaml.safe_load((PROM / "alerts.yml").read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert {
        "TrendcastWorkerDown", "TrendcastConsumerLagGrowing", "TrendcastConsumerBehind", "TrendcastNoForecasts",
        "TrendcastCoverageOffTarget", "TrendcastDriftStorm", "TrendcastDeadLetterRateHigh",
    } <= names
    tests = yaml.safe_load((PROM / "alerts.test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case.get("alert_rule_test", [])
              if t.get("exp_alerts")}
    assert tested == names, f"alerts without a firing test: {sorted(names - tested)}"
