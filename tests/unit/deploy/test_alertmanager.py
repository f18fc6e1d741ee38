"""Alertmanager's config loads (amtool), and Prometheus hands its alerts to it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
ALERTMANAGER = ROOT / "deploy/alertmanager/alertmanager.yml"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _alert_names() -> set[str]:
    rules = _yaml(ROOT / "deploy/prometheus/rules.yml")
    return {r["alert"] for group in rules["groups"] for r in group["rules"] if "alert" in r}


def test_alertmanager_config_is_valid(amtool: str) -> None:
    result = subprocess.run(
        [amtool, "check-config", str(ALERTMANAGER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_critical_alerts_reach_the_webhook_receiver(amtool: str) -> None:
    result = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER}",
            "--verify.receivers=afflux-webhook",
            "alertname=AffluxServiceDown",
            "severity=critical",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_sends_alerts_to_the_compose_alertmanager() -> None:
    prometheus = _yaml(ROOT / "deploy/prometheus/prometheus.yml")
    targets = [
        target
        for manager in prometheus["alerting"]["alertmanagers"]
        for static in manager["static_configs"]
        for target in static["targets"]
    ]
    assert targets == ["alertmanager:9093"]
    services = _yaml(ROOT / "compose.yaml")["services"]
    mounts = services["alertmanager"]["volumes"]
    assert "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in mounts
    assert services["prometheus"]["depends_on"]["alertmanager"]["condition"] == "service_healthy"


def test_inhibit_rules_name_only_alerts_that_exist() -> None:
    # A misspelt alert name in a matcher silently inhibits nothing.
    known = _alert_names()
    named = {
        matcher.partition("=")[2].strip('"')
        for rule in _yaml(ALERTMANAGER)["inhibit_rules"]
        for matcher in rule["source_matchers"] + rule["target_matchers"]
        if matcher.startswith("alertname=")
    }
    assert named, "no inhibit rule names an alert"
    assert sorted(named - known) == []


def test_webhook_url_is_the_documented_placeholder() -> None:
    # The deploy guide tells operators which URL to replace; keep the two in step.
    receivers = _yaml(ALERTMANAGER)["receivers"]
    urls = [hook["url"] for r in receivers for hook in r.get("webhook_configs", [])]
    assert urls
    deploy = (ROOT / "docs/deploy.md").read_text(encoding="utf-8")
    assert all(url in deploy for url in urls)
