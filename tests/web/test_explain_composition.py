"""Explain of the cart page (examples/checkout.yaml, contract sections 6, 7 and 10): skipped
calls, for_each element counts, per-call cache hits, dedupe followers and resilience
decisions in ``Server-Timing``; the real executor over ``httpx.MockTransport`` downstreams."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from django.test import Client

from orchestration.spawn import ThreadSpawner
from tests.web.test_explain_header import SECRET, TOKEN, entries, serving_checkout

PORTS = {9101: "cart", 9102: "inventory", 9109: "recommendations"}


class Downstreams:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.items: list[dict[str, Any]] = [{"sku": "a"}, {"sku": "b"}]
        self.cart: Callable[[int], httpx.Response] = lambda _n: httpx.Response(
            200, json={"id": "c1", "userId": "u1", "items": self.items}
        )
        self.product_delay_s = 0.0

    def handle(self, request: httpx.Request) -> httpx.Response:
        service = PORTS[request.url.port or 0]
        with self.lock:
            self.hits[service] += 1
            number = self.hits[service]
        if service == "cart":
            return self.cart(number)
        if service == "inventory":
            time.sleep(self.product_delay_s)  # keeps identical product requests in flight together
            return httpx.Response(200, json={"sku": request.url.path.rsplit("/", 1)[1]})
        return httpx.Response(200, json=[{"sku": "r1"}])


@pytest.fixture
def downstreams(monkeypatch: pytest.MonkeyPatch) -> Iterator[Downstreams]:
    monkeypatch.setenv("GATEWAY_JWT_SECRET", SECRET)
    fakes = Downstreams()
    with serving_checkout(fakes.handle, ThreadSpawner(), "explain-composition"):
        yield fakes


def cart_page(**headers: str) -> Any:
    token = jwt.encode({"sub": "u1", "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")
    return Client().get("/v1/checkout/cart/c1", HTTP_AUTHORIZATION=f"Bearer {token}", **headers)


def test_a_for_each_call_says_how_many_elements_it_made(downstreams):
    response = cart_page(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 200 and response.json()["items"] == [{"sku": "a"}, {"sku": "b"}]
    timing = entries(response["Server-Timing"])
    assert list(timing) == ["total", "cart", "products", "recommendations"]
    assert timing["products"][1] == "inventory 200 attempts=2 elements=2"
    assert timing["recommendations"][1] == "recommendations 200 attempts=1"


def test_a_skipped_call_says_skipped(downstreams):
    downstreams.items = []
    response = cart_page(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 200 and response.json()["recommendations"] == []
    timing = entries(response["Server-Timing"])
    assert timing["recommendations"] == (0.0, "recommendations skipped attempts=0")
    assert downstreams.hits["recommendations"] == 0


def test_per_call_cache_hits_are_marked(downstreams):
    assert cart_page().status_code == 200  # fills the product cache (ttl 60 s)
    response = cart_page(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 200 and downstreams.hits["inventory"] == 2
    assert entries(response["Server-Timing"])["products"][1] == "inventory 200 attempts=0 elements=2 cache"


def test_dedupe_followers_are_marked_shared(downstreams):
    downstreams.items = [{"sku": "same"}, {"sku": "same"}, {"sku": "same"}]
    downstreams.product_delay_s = 0.3
    response = cart_page(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 200 and response.json()["items"] == [{"sku": "same"}] * 3
    assert downstreams.hits["inventory"] == 1  # inventory has dedupe: true
    assert entries(response["Server-Timing"])["products"][1] == "inventory 200 attempts=1 elements=3 shared"


def test_resilience_decisions_are_named(downstreams):
    def cart(number: int) -> httpx.Response:
        if number == 1:
            return httpx.Response(503, headers={"Retry-After": "1"}, json={})
        return httpx.Response(200, json={"id": "c1", "userId": "u1", "items": []})

    downstreams.cart = cart
    response = cart_page(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 200 and downstreams.hits["cart"] == 2
    assert entries(response["Server-Timing"])["cart"][1] == "cart 200 attempts=2 retry_after_waited"


def test_a_refused_for_each_is_explained_with_its_reason_in_the_envelope(downstreams, settings):
    downstreams.items = {"sku": "a"}  # type: ignore[assignment]
    response = cart_page(HTTP_X_GATEWAY_EXPLAIN=TOKEN)
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "call 'products': for_each gave an object, not a list"
    timing = entries(response["Server-Timing"])
    assert timing["products"][1] == "inventory bad_body attempts=0"
    assert downstreams.hits["inventory"] == 0
