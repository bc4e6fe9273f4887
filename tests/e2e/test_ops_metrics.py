"""/metrics under gunicorn with two workers: one scrape sees every worker's counts."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.ops_config import ops_config

pytestmark = pytest.mark.e2e


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_count_every_request_across_two_workers(fake_downstream, gateway_server) -> None:
    cart = fake_downstream({"*": (200, {"items": [1, 2]})})
    shipping = fake_downstream({"/estimate": (500, {"error": "down"})})
    server = gateway_server(ops_config(cart=cart.url, shipping=shipping.url), workers=2)

    for cart_id in range(6):
        assert server.get(f"/v1/cart/{cart_id}")[0] == 200
    for _ in range(3):
        status, _, body = server.get("/v1/summary")
        assert status == 200 and json.loads(body)["partialData"] is True
    time.sleep(0.6)  # let every worker's local breaker snapshot expire: shipping is open now
    status, _, body = server.get("/v1/summary")
    assert status == 200 and json.loads(body)["failedServices"] == ["shipping"]
    assert shipping.hits["/estimate"] == 3  # the fourth call was skipped by the open breaker

    status, headers, text = server.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = _samples(text.decode())
    assert len(list(server.multiproc_dir.glob("*.db"))) >= 2  # values written by more than one process

    count = "gateway_request_duration_seconds_count"
    assert _value(samples, count, endpoint="cart-view", method="GET") == 6
    assert _value(samples, count, endpoint="summary", method="GET") == 4
    assert _value(samples, "gateway_partial_responses_total", endpoint="summary") == 4
    assert _value(samples, "gateway_requests_total", endpoint="cart-view", status="200") == 6

    attempts = "gateway_downstream_duration_seconds_count"
    assert _value(samples, attempts, service="cart", endpoint="cart-view", call="cart") == 6
    assert _value(samples, attempts, service="cart", endpoint="summary", call="cart") == 4
    assert _value(samples, attempts, service="shipping", endpoint="summary", call="ship") == 3
    bucket = "gateway_downstream_duration_seconds_bucket"
    assert _value(samples, bucket, service="cart", endpoint="cart-view", call="cart", le="+Inf") == 6

    outcomes = "gateway_downstream_attempts_total"
    assert _value(samples, outcomes, service="cart", outcome="ok") == 10
    assert _value(samples, outcomes, service="shipping", outcome="5xx") == 3
    assert _value(samples, outcomes, service="shipping", outcome="circuit_open") == 1

    assert _value(samples, "gateway_breaker_state", service="shipping") == 2
    assert _value(samples, "gateway_breaker_state", service="cart") == 0
    transitions = "gateway_breaker_transitions_total"
    assert _value(samples, transitions, service="shipping", from_state="closed", to_state="open") == 1
    assert _value(samples, "gateway_endpoint_latency_target_seconds", endpoint="summary") == pytest.approx(1.6)
    # django-prometheus counts every aggregate request too, whichever worker served it.
    by_view = "django_http_responses_total_by_status_view_method_total"
    assert _value(samples, by_view, status="200", view="aggregate", method="GET") == 10
    latency = "django_http_requests_latency_seconds_by_view_method_count"
    assert _value(samples, latency, view="aggregate", method="GET") == 10


def test_access_line_and_log_context(fake_downstream, gateway_server) -> None:
    cart = fake_downstream({"*": (200, {"items": []})})
    shipping = fake_downstream({"/estimate": (503, {})})
    server = gateway_server(ops_config(cart=cart.url, shipping=shipping.url), workers=1)

    status, headers, _ = server.get("/v1/summary?token=s3cr3t-query", headers={"X-Request-ID": "req-ops-1"})
    assert status == 200 and headers["X-Request-ID"] == "req-ops-1"
    traceparent = shipping.headers["/estimate"][0]["traceparent"]
    trace_id = traceparent.split("-")[1]
    assert cart.headers["/carts/1"][0]["traceparent"].split("-")[1] == trace_id
    assert cart.headers["/carts/1"][0]["x-request-id"] == "req-ops-1"

    deadline = time.monotonic() + 5
    access = []
    while time.monotonic() < deadline and not access:
        lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
        access = [line for line in lines if line.get("name") == "gateway.access"]
        time.sleep(0.1)
    assert len(access) == 1
    line = access[0]
    assert line["endpoint"] == "summary" and line["status"] == 200 and line["partial"] is True
    assert line["failed_services"] == ["shipping"] and line["request_id"] == "req-ops-1"
    assert line["trace_id"] == trace_id and line["duration_ms"] > 0
    request_lines = [entry for entry in lines if entry.get("request_id") == "req-ops-1"]
    assert all(entry.get("trace_id") == trace_id for entry in request_lines)
    assert "s3cr3t-query" not in server.log_path.read_text()
