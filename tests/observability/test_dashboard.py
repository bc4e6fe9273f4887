"""The Grafana dashboard is valid JSON and shows what on-call needs, from series we write."""

from __future__ import annotations

import json
import re
from pathlib import Path

from orchestration.observability import metrics  # noqa: F401 - registers our series

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "gateway-dashboard.json"
OUR_SERIES = {
    "gateway_request_duration_seconds",
    "gateway_requests_total",
    "gateway_partial_responses_total",
    "gateway_downstream_duration_seconds",
    "gateway_downstream_attempts_total",
    "gateway_breaker_state",
    "gateway_breaker_transitions_total",
    "gateway_cache_lookups_total",
    "gateway_rate_limit_rejections_total",
    "gateway_endpoint_latency_target_seconds",
}


def _exprs(dashboard: dict) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_dashboard_panels_read_only_series_we_write() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    names = [name for expr in _exprs(dashboard) for name in re.findall(r"gateway_\w+", expr)]
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for name in names}
    assert used == OUR_SERIES


def test_dashboard_has_percentiles_per_endpoint_and_service_error_rate_and_breakers() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = "\n".join(_exprs(dashboard))
    for quantile in ("0.50", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, sum by (le, endpoint)" in exprs
        assert f"histogram_quantile({quantile}, sum by (le, service)" in exprs
    assert 'outcome=~"5xx|timeout|connect|bad_body"' in exprs
    timelines = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "state-timeline"]
    assert timelines == ["Circuit breaker state"]
