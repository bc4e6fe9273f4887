"""``X-Gateway-Explain``: Server-Timing per call for the token's holder only (contract section 6).

The Checkout BFF of examples/checkout.yaml runs on the real executor, downstream
clients and breakers over ``httpx.MockTransport`` downstreams."""

from __future__ import annotations

import importlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from django.conf import settings
from django.test import Client

from orchestration.downstream.pool import DownstreamPool
from orchestration.executor import Executor
from orchestration.explain import ExplainObserver
from orchestration.observer import NullObserver
from orchestration.spawn import InlineSpawner, Spawner
from orchestration.web import aggregate, edge
from orchestration.web.explain_header import install_explain_token
from orchestration.web.runtime import GatewayRuntime, LoadedConfig, build_runtime_parts
from registry.config.loading import config_read
from registry.config.plan import plan_from_document

CHECKOUT = Path(__file__).resolve().parents[2] / "examples" / "checkout.yaml"
SECRET = "explain-tests-secret-0123456789abcdef"
TOKEN = "explain-token-7f3a"

ANSWERS: dict[str, Callable[[], httpx.Response]] = {
    "cart": lambda: httpx.Response(200, json={"items": [{"sku": "a", "quantity": 1}], "currency": "USD"}),
    "inventory": lambda: httpx.Response(200, json={"available": True}),
    "pricing": lambda: httpx.Response(200, json={"subtotal": 100, "currency": "USD"}),
    "shipping": lambda: httpx.Response(200, json={"options": [], "estimated": True}),
    "tax": lambda: httpx.Response(200, json={"amount": 8, "rate": 0.08}),
}


class Downstreams:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.answers = dict(ANSWERS)
        self.seen_headers: list[httpx.Headers] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        port = request.url.port or 0
        service = {9101: "cart", 9102: "inventory", 9103: "pricing", 9105: "shipping", 9106: "tax"}[port]
        self.hits[service] += 1
        self.seen_headers.append(request.headers)
        return self.answers[service]()


@contextmanager
def serving_checkout(
    handler: Callable[[httpx.Request], httpx.Response], spawner: Spawner, version: str
) -> Iterator[None]:
    """The Checkout BFF on the real executor with the explain observer, its downstreams
    answered by ``handler``, and the explain token installed; all put back afterwards."""
    plan = plan_from_document(config_read(CHECKOUT), version=version)
    router, authenticator = build_runtime_parts(LoadedConfig(plan=plan, api_keys={}))
    observer = ExplainObserver(NullObserver())
    pool = DownstreamPool(plan.services, lambda _s: httpx.MockTransport(handler), observer=observer, environ={})
    executor = Executor(plan, pool, observer=observer, spawner=spawner, sleep=lambda _s: None)
    runtime = GatewayRuntime(plan, router, authenticator, executor, pool)
    importlib.import_module(settings.ROOT_URLCONF)  # wiring.install() now, not over ours
    runtime_before, edge_before = aggregate._runtime_source, edge.installed_edge()
    aggregate.install_runtime_source(lambda: runtime)
    edge.install_edge(None)
    install_explain_token(TOKEN)
    try:
        yield
    finally:
        aggregate.install_runtime_source(runtime_before)  # type: ignore[arg-type]
        edge.install_edge(edge_before)
        install_explain_token(settings.GATEWAY["EXPLAIN_TOKEN"])


@pytest.fixture
def downstreams(monkeypatch: pytest.MonkeyPatch) -> Iterator[Downstreams]:
    monkeypatch.setenv("GATEWAY_JWT_SECRET", SECRET)
    fakes = Downstreams()
    with serving_checkout(fakes.handle, InlineSpawner(), "explain-test"):
        yield fakes


def summary(**headers: str) -> Any:
    token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")
    return Client().post(
        "/v1/checkout/summary",
        data=json.dumps({"cartId": "c1"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        **headers,
    )


def entries(header: str) -> dict[str, tuple[float, str]]:
    """``name -> (dur, desc)`` of a Server-Timing header."""
    found = {}
    for entry in header.split(", "):
        match = re.fullmatch(r'([\w-]+);dur=([0-9.]+)(?:;desc="([^"]*)")?', entry)
        assert match, entry
        found[match.group(1)] = (float(match.group(2)), match.group(3) or "")
    return found


def test_with_the_token_every_call_is_timed(downstreams):
    response = summary(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 200
    timing = entries(response["Server-Timing"])
    assert list(timing) == ["total", "cart", "inventory", "pricing", "shipping", "tax"]
    assert timing["cart"][1] == "cart 200 attempts=1"
    assert timing["tax"][1] == "tax 200 attempts=1"
    assert all(dur <= timing["total"][0] for dur, _ in timing.values())


def test_without_the_token_nothing_is_revealed(downstreams):
    for headers in (
        {},
        {"HTTP_X_GATEWAY_EXPLAIN": "wrong"},
        {"HTTP_X_GATEWAY_EXPLAIN": ""},
        {"HTTP_X_GATEWAY_EXPLAIN": TOKEN + "x"},
    ):
        response = summary(**headers)
        assert response.status_code == 200
        assert not response.has_header("Server-Timing"), headers
        assert b"attempts" not in response.content


def test_no_token_configured_means_never(downstreams):
    install_explain_token("")
    response = summary(HTTP_X_GATEWAY_EXPLAIN="")
    assert not response.has_header("Server-Timing")


def test_an_optional_call_that_failed_shows_its_retries_and_fallback(downstreams):
    downstreams.answers["shipping"] = lambda: httpx.Response(503, json={})
    response = summary(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 200 and response.json()["partialData"] is True
    assert downstreams.hits["shipping"] == 2  # one retry on 5xx (examples/checkout.yaml)
    assert entries(response["Server-Timing"])["shipping"][1] == "shipping 503 attempts=2 fallback"


def test_a_required_failure_is_explained_on_the_error_envelope(downstreams):
    downstreams.answers["pricing"] = lambda: httpx.Response(404, json={})
    response = summary(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 404
    timing = entries(response["Server-Timing"])
    assert timing["pricing"][1] == "pricing 404 attempts=1"
    assert "tax" not in timing  # stage 3 never started
    assert downstreams.hits["tax"] == 0


def test_an_open_breaker_is_named(downstreams):
    downstreams.answers["shipping"] = lambda: httpx.Response(500, json={})
    for _ in range(2):  # 2 x 2 attempts: past shipping's threshold of 3
        summary()
    hits = downstreams.hits["shipping"]
    response = summary(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert downstreams.hits["shipping"] == hits  # refused without touching the network
    assert entries(response["Server-Timing"])["shipping"][1] == "shipping circuit_open attempts=0 fallback breaker-open"


def test_the_explain_header_and_token_never_reach_a_downstream(downstreams):
    summary(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert downstreams.seen_headers
    for headers in downstreams.seen_headers:
        assert "x-gateway-explain" not in headers
        assert TOKEN not in str(list(headers.values()))


def _explain_count(source: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("gateway_explain_requests_total", {"source": source}) or 0.0


def test_explain_runs_are_counted_in_metrics_and_others_are_not(downstreams):
    before, console_before = _explain_count("header"), _explain_count("console")
    for headers in ({}, {"HTTP_X_GATEWAY_EXPLAIN": "wrong"}):
        assert summary(**headers).status_code == 200
    assert _explain_count("header") == before  # no token, no explain run
    assert summary(HTTP_X_GATEWAY_EXPLAIN=TOKEN).status_code == 200
    assert summary(HTTP_X_GATEWAY_EXPLAIN=TOKEN).status_code == 200
    assert _explain_count("header") == before + 2
    assert _explain_count("console") == console_before
