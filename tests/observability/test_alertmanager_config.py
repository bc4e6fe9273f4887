"""deploy/alertmanager/alertmanager.yml routes the shipped alerts as the mission's table says.

amtool (Alertmanager's own CLI) is the judge: ``check-config`` loads the file as
Alertmanager would, ``config routes test`` resolves the receiver for a label set. Each
alert's labels come from the shipped rules, so a change of a rule's ``channel`` that the
routing does not follow fails here. CI installs amtool (scripts/test-deps.sh); only a
local run without it skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIG = DEPLOY / "alertmanager" / "alertmanager.yml"
RULES = DEPLOY / "prometheus" / "gateway.rules.yml"

# The mission template's "Monitoring and Observability" table: alert -> channel -> receiver.
EXPECTED = {
    "GatewayEndpointLatencyP99High": ("slack", "slack-gateway", {"endpoint": "checkout-summary"}),
    "GatewayDownstreamErrorRateHigh": ("pagerduty", "pagerduty-gateway", {"service": "inventory"}),
    "GatewayCircuitBreakerOpen": ("slack", "slack-gateway", {"service": "inventory"}),
    "GatewayResponseContractViolations": ("slack", "slack-gateway", {"endpoint": "checkout-summary", "field": "total"}),
}


def _amtool() -> str:
    found = shutil.which("amtool")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("amtool is not installed; CI must install it (scripts/test-deps.sh: prometheus-alertmanager)")
    pytest.skip("amtool not installed (apt-get install prometheus-alertmanager)")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_amtool(), *args], capture_output=True, text=True, timeout=60)


def _shipped_alerts() -> dict[str, dict[str, str]]:
    rules = yaml.safe_load(RULES.read_text())
    return {
        rule["alert"]: rule.get("labels", {}) for group in rules["groups"] for rule in group["rules"] if "alert" in rule
    }


def _receiver(labels: dict[str, str], verify: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["config", "routes", "test", f"--config.file={CONFIG}"]
    if verify is not None:
        args.append(f"--verify.receivers={verify}")
    return _run(*args, *(f"{key}={value}" for key, value in sorted(labels.items())))


def test_config_is_valid_for_alertmanager() -> None:
    result = _run("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "2 receivers" in result.stdout


def test_every_shipped_alert_reaches_its_channel() -> None:
    shipped = _shipped_alerts()
    assert set(shipped) == set(EXPECTED), "a new alert needs a row in the routing table and here"
    for alert, (channel, receiver, extra) in EXPECTED.items():
        labels = {**shipped[alert], **extra, "alertname": alert}
        assert labels["channel"] == channel, f"{alert} is labelled for {labels['channel']}"
        result = _receiver(labels, verify=receiver)
        assert result.returncode == 0, f"{alert}: {result.stdout}{result.stderr}"
        assert result.stdout.strip() == receiver


def test_route_test_fails_when_the_receiver_is_not_the_expected_one() -> None:
    """The check above can fail: a page routed to Slack would be caught."""
    labels = {**_shipped_alerts()["GatewayDownstreamErrorRateHigh"], "alertname": "GatewayDownstreamErrorRateHigh"}
    result = _receiver(labels, verify="slack-gateway")
    assert result.returncode != 0
    assert "pagerduty-gateway" in result.stdout


def _receivers() -> dict[str, Any]:
    return {r["name"]: r for r in yaml.safe_load(CONFIG.read_text())["receivers"]}


def test_secrets_are_read_from_files_never_written_inline() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    assert config["global"]["slack_api_url_file"].startswith("/etc/alertmanager/secrets/")
    assert "slack_api_url" not in config["global"]
    for slack in _receivers()["slack-gateway"]["slack_configs"]:
        assert "api_url" not in slack
    for pagerduty in _receivers()["pagerduty-gateway"]["pagerduty_configs"]:
        assert pagerduty["routing_key_file"].startswith("/etc/alertmanager/secrets/")
        assert "routing_key" not in pagerduty and "service_key" not in pagerduty
