"""``examples/checkout.yaml`` and the simulator agree on the mission's numbers.

The walk below is a deliberately naive reference (stages in order, calls one by
one, no resilience): it renders each call's templates with the engine's template
compiler, calls the simulator over HTTP and assembles the endpoint's ``response``.
It checks the *example*, not the engine; the gateway's own tests serve the same
file through the real executor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from orchestration.templates import compile_path_template, compile_template
from tests.checkout_expectations import MISSION_SUMMARY

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = ROOT / "examples" / "checkout.yaml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    with CHECKOUT.open() as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def endpoint(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in config["endpoints"] if e["name"] == name)


def walk(
    config: dict[str, Any], name: str, urls: dict[str, str], request: dict[str, Any]
) -> tuple[Any, list[str], list[dict[str, str]]]:
    """Run one endpoint's calls against ``urls``; returns (response, failed services, calls made)."""
    spec = endpoint(config, name)
    context: dict[str, Any] = {
        "request": {"path": {}, "query": {}, "headers": {}, "body": None, **request},
        "user": {"sub": "42"},
    }
    failed: list[str] = []
    made: list[dict[str, str]] = []
    for call in sorted(spec["calls"], key=lambda c: c["stage"]):
        path = compile_path_template(call["path"]).render(context)
        query = {k: compile_template(v).render(context) for k, v in call.get("query", {}).items()}
        query = {k: v for k, v in query.items() if v is not None}
        url = urls[call["service"]] + path + ("?" + urllib.parse.urlencode(query) if query else "")
        body = compile_template(call["body"]).render(context) if "body" in call else None
        made.append({"id": call["id"], "method": call["method"], "url": url})
        try:
            data = json.dumps(body).encode() if body is not None else None
            outgoing = urllib.request.Request(url, data=data, method=call["method"])
            outgoing.add_header("Content-Type", "application/json")
            with urllib.request.urlopen(outgoing, timeout=5) as answer:
                context[call["id"]] = json.loads(answer.read())
        except (urllib.error.URLError, OSError):
            assert not call["required"], f"required call {call['id']} failed: {url}"
            failed.append(call["service"])
            context[call["id"]] = call.get("fallback")
    return compile_template(spec["response"]).render(context), failed, made


def test_base_urls_are_the_simulators_default_ports(config: dict[str, Any], simulator: ModuleType) -> None:
    expected = {spec.name: f"http://127.0.0.1:{spec.port}" for spec in simulator.SERVICES if spec.name != "catalog"}
    assert {name: s["base_url"] for name, s in config["services"].items()} == expected
    for name, service in config["services"].items():
        spec = next(s for s in simulator.SERVICES if s.name == name)
        assert service["avg_latency_ms"] == spec.latency_ms, name


def test_the_layer_is_the_missions_checkout_bff(config: dict[str, Any]) -> None:
    layer = config["layer"]
    assert (layer["name"], layer["owner"], layer["base_path"]) == (
        "Checkout BFF",
        "Commerce Platform Team",
        "/v1/checkout",
    )
    assert layer["auth"]["jwt"] == {"algorithms": ["HS256"], "secret_env": "GATEWAY_JWT_SECRET", "user_claim": "sub"}
    assert [(r["scope"], r["limit"]) for r in layer["rate_limits"]] == [
        ("user", 100),
        ("ip", 500),
        ("endpoint", 50),
        ("global", 10000),
    ]
    summary = endpoint(config, "checkout-summary")
    assert (summary["method"], summary["path"], summary["timeout_ms"]) == ("POST", "/summary", 2000)
    plan = [(c["stage"], c["service"], c["method"], c["required"], c["timeout_ms"]) for c in summary["calls"]]
    assert plan == [
        (1, "cart", "GET", True, 200),
        (2, "inventory", "POST", True, 400),
        (2, "pricing", "POST", True, 200),
        (2, "shipping", "POST", False, 500),
        (3, "tax", "POST", True, 300),
    ]


def test_checkout_summary_assembles_to_the_missions_numbers(config: dict[str, Any], sim: Any) -> None:
    urls = {name: sim.url(name) for name in sim.ports}
    response, failed, made = walk(config, "checkout-summary", urls, {"body": {"cartId": "c-1001"}})
    assert failed == []
    assert response == MISSION_SUMMARY
    assert made[0]["url"] == urls["cart"] + "/carts/c-1001"


def test_without_shipping_the_summary_degrades_to_shipping_null(config: dict[str, Any], simulator: ModuleType) -> None:
    ports = {name: 0 for name in simulator.SERVICE_NAMES}
    with simulator.start_in_thread(ports, without=["shipping"], latency_scale=0) as handle:
        urls = {name: handle.url(name) for name in handle.ports}
        urls["shipping"] = "http://127.0.0.1:9"  # nothing listens: connection refused
        response, failed, _ = walk(config, "checkout-summary", urls, {"body": {"cartId": "c-1001"}})
    assert failed == ["shipping"]
    assert response == {**MISSION_SUMMARY, "shipping": None}


def test_a_cart_id_cannot_escape_its_path_segment(config: dict[str, Any], sim: Any) -> None:
    urls = {name: sim.url(name) for name in sim.ports}
    with pytest.raises(AssertionError, match="required call cart failed"):
        walk(config, "checkout-summary", urls, {"body": {"cartId": "../health"}})


def test_dashboard_assembles_the_templates_schema(config: dict[str, Any], sim: Any) -> None:
    urls = {name: sim.url(name) for name in sim.ports}
    response, failed, made = walk(config, "dashboard", urls, {"path": {"user_id": "42"}})
    assert failed == []
    assert response["user"] == {"id": "42", "name": "Ada Lovelace", "email": "ada@example.com"}
    assert response["preferences"] == {"theme": "dark", "notifications": False}
    assert [r["sku"] for r in response["recommendations"]] == ["SKU-CASE", "SKU-CHARGER", "SKU-SCREEN-PROTECTOR"]
    assert set(response) == {"user", "preferences", "recommendations"}
    assert made[-1]["url"] == urls["recommendations"] + "/recommendations?user=42"


def test_dashboard_falls_back_to_defaults(config: dict[str, Any], sim: Any) -> None:
    urls = {name: sim.url(name) for name in sim.ports}
    urls["preferences"] = urls["recommendations"] = "http://127.0.0.1:9"
    response, failed, _ = walk(config, "dashboard", urls, {"path": {"user_id": "42"}})
    assert failed == ["preferences", "recommendations"]
    assert response["preferences"] == {"theme": "light", "notifications": True}
    assert response["recommendations"] == []


def test_gateway_check_accepts_the_example() -> None:
    """The contract's checker is the authority on the file's validity."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gateway_project.settings"}
    result = subprocess.run(
        [sys.executable, "manage.py", "gateway", "check", str(CHECKOUT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
