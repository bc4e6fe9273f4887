"""Through gunicorn (two gevent workers, Redis), the cart page of issue 18: per-item
product calls (for_each, in order, at most max_parallel at once), recommendations
skipped for an empty cart (when), product answers reused across both workers from
Redis and purged by tag (per-call cache), and 50 clients asking the catalog at the
same instant sending it one request per worker process (dedupe)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import yaml

from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.support.fake_downstream import FakeDownstream
from tests.support.redis import redis_url_for_db

pytestmark = pytest.mark.e2e

WORKERS = 2
WEBHOOK_SECRET = "compose-secret"
MAX_FAN_OUT = 20
CARTS = {
    "empty": [],
    "three": ["p1", "p2", "p3"],
    "six": ["s1", "s2", "s3", "s4", "s5", "s6"],
    "cached": ["c1", "c2"],
    "broken": ["ok1", "bad", "ok2"],
    "explained": ["x1", "x2"],
}
EXPLAIN_TOKEN = "compose-explain-token"


def cart_items(handler: Any) -> tuple[int, Any]:
    cart = urlsplit(handler.path).path.rsplit("/", 1)[1]
    if cart == "not-a-list":
        return 200, {"items": {"sku": "x"}}
    if cart == "huge":
        return 200, {"items": [{"sku": f"h{n}"} for n in range(MAX_FAN_OUT + 1)]}
    return (200, {"items": [{"sku": sku} for sku in CARTS[cart]]}) if cart in CARTS else (404, {})


class Catalog:
    """Products answer after 150 ms; counts requests in flight (the fan-out bound) and
    how many times each product and the catalog summary were asked."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def product(self, handler: Any) -> tuple[int, Any]:
        parts = urlsplit(handler.path)
        sku = parts.path.rsplit("/", 1)[1]
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(0.15)
        with self.lock:
            self.in_flight -= 1
        if sku == "bad":
            return 500, {}
        return 200, {"sku": sku, "position": int(parse_qs(parts.query)["position"][0])}

    def summary(self, handler: Any) -> tuple[int, Any]:
        time.sleep(0.5)  # long enough for every client to be in flight at once
        return 200, {"categories": 12}


def cart_page(name: str, path: str, *, required: bool) -> dict[str, Any]:
    return {
        "name": name,
        "method": "GET",
        "path": path,
        "timeout_ms": 5000,
        "calls": [
            {"id": "cart", "service": "cart", "stage": 1, "path": "/carts/{{ request.query.cartId }}"},
            {
                "id": "recs",
                "service": "recs",
                "stage": 2,
                "path": "/recs",
                "required": False,
                "when": "{{ length(cart.items) > `0` }}",
                "fallback": [],
            },
            {
                "id": "products",
                "service": "catalog",
                "stage": 2,
                "for_each": "{{ cart.items }}",
                "max_parallel": 2,
                "path": "/products/{{ item.sku }}",
                "query": {"position": "{{ index }}"},
                "required": required,
                "cache": {"ttl_s": 60, "tags": ["catalog", "product:{{ item.sku }}"]},
            },
        ],
        "response": {"items": "{{ products }}", "recs": "{{ recs }}"},
    }


def config(cart: str, catalog: str, recs: str) -> str:
    document = {
        "version": 1,
        "layer": {"name": "Compose", "base_path": "/v1"},
        "services": {
            "cart": {"base_url": cart, "timeout_ms": 2000},
            "catalog": {"base_url": catalog, "timeout_ms": 2000, "dedupe": True},
            "recs": {"base_url": recs, "timeout_ms": 2000},
        },
        "endpoints": [
            cart_page("cart-page", "/cart-page", required=True),
            cart_page("cart-page-lenient", "/cart-page-lenient", required=False),
            {
                "name": "catalog-summary",
                "method": "GET",
                "path": "/catalog-summary",
                "timeout_ms": 5000,
                "calls": [{"id": "summary", "service": "catalog", "stage": 1, "path": "/summary"}],
                "response": "{{ summary }}",
            },
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


class Setup:
    def __init__(self, server: GatewayServer, cart: FakeDownstream, catalog: FakeDownstream, catalog_state: Catalog,
                 recs: FakeDownstream, redis_db: int) -> None:  # fmt: skip
        self.server, self.cart, self.catalog, self.state, self.recs = server, cart, catalog, catalog_state, recs
        self.redis_db = redis_db

    def get(self, path: str) -> tuple[int, Any]:
        status, _, raw = self.server.get(path)
        return status, json.loads(raw)


@pytest.fixture(scope="module")
def setup(
    module_gateway_server: Callable[..., GatewayServer], module_fake_downstream: Callable[..., FakeDownstream]
) -> Setup:
    state = Catalog()
    cart = module_fake_downstream({"*": cart_items})
    catalog = module_fake_downstream({"/summary": state.summary, "*": state.product})
    recs = module_fake_downstream({"/recs": (200, [{"sku": "r1"}])})
    database, redis_db = isolated_targets("compose", 3)
    env = {
        "GATEWAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GATEWAY_MAX_FAN_OUT": str(MAX_FAN_OUT),
        "GATEWAY_MAX_IN_FLIGHT": "100",  # admission must not queue the 50 clients of the dedupe test
        "GATEWAY_EXPLAIN_TOKEN": EXPLAIN_TOKEN,
    }
    server = module_gateway_server(
        config(cart.url, catalog.url, recs.url), env, workers=WORKERS, database=database, redis_db=redis_db
    )
    return Setup(server, cart, catalog, state, recs, redis_db)


def product_hits(setup: Setup, skus: list[str]) -> list[int]:
    return [setup.catalog.hits[f"/products/{sku}"] for sku in skus]


def test_recommendations_are_skipped_for_an_empty_cart(setup: Setup) -> None:
    before = setup.recs.hits["/recs"]
    assert setup.get("/v1/cart-page?cartId=empty") == (200, {"items": [], "recs": []})  # not partial
    assert setup.recs.hits["/recs"] == before  # no request
    status, body = setup.get("/v1/cart-page?cartId=three")
    assert status == 200 and body["recs"] == [{"sku": "r1"}]
    assert setup.recs.hits["/recs"] == before + 1


def test_one_product_call_per_item_in_item_order_at_most_max_parallel_at_once(setup: Setup) -> None:
    setup.state.peak = 0
    status, body = setup.get("/v1/cart-page?cartId=six")
    assert status == 200, body
    assert body["items"] == [{"sku": sku, "position": n} for n, sku in enumerate(CARTS["six"])]
    assert product_hits(setup, CARTS["six"]) == [1] * 6
    assert setup.state.peak == 2  # max_parallel: 2, and it did run two at once


def test_a_failed_element_fails_a_required_call_and_is_null_in_an_optional_one(setup: Setup) -> None:
    status, body = setup.get("/v1/cart-page?cartId=broken")
    assert status == 502
    assert body["error"]["code"] == "DOWNSTREAM_FAILURE" and body["error"]["failedServices"] == ["catalog"]
    status, body = setup.get("/v1/cart-page-lenient?cartId=broken")
    assert status == 200
    assert body["items"] == [{"sku": "ok1", "position": 0}, None, {"sku": "ok2", "position": 2}]
    assert (body["partialData"], body["failedServices"]) == (True, ["catalog"])


def test_a_for_each_over_a_non_list_or_too_long_a_list_fails_the_call_without_requests(setup: Setup) -> None:
    before = sum(setup.catalog.hits.values())
    reasons = {
        "not-a-list": "call 'products': for_each gave an object, not a list",
        "huge": f"call 'products': for_each gave {MAX_FAN_OUT + 1} elements, over GATEWAY_MAX_FAN_OUT={MAX_FAN_OUT}",
    }
    for cart, reason in reasons.items():
        status, body = setup.get(f"/v1/cart-page?cartId={cart}")
        assert status == 502 and body["error"]["code"] == "DOWNSTREAM_FAILURE", body
        assert body["error"]["message"] == reason  # the reason reaches the client, not only the logs
        status, body = setup.get(f"/v1/cart-page-lenient?cartId={cart}")
        assert (status, body["items"], body["partialData"]) == (200, None, True)
    assert sum(setup.catalog.hits.values()) == before


def test_product_answers_are_reused_across_both_workers_and_purged_by_tag(setup: Setup) -> None:
    skus = CARTS["cached"]
    expected = {"items": [{"sku": sku, "position": n} for n, sku in enumerate(skus)], "recs": [{"sku": "r1"}]}
    for _ in range(12):  # a new connection each time: both workers serve some of them
        assert setup.get("/v1/cart-page?cartId=cached") == (200, expected)
    assert product_hits(setup, skus) == [1, 1]
    client = redis.Redis.from_url(redis_url_for_db(setup.redis_db))
    assert client.zcard("gw:cache:t:product:c1") == 1  # the entry lives in Redis, under its tags

    body = json.dumps({"tags": ["product:c2"]}).encode()
    signature = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    status, _, _ = setup.server.request(
        "POST", "/webhooks/invalidate", body=json.loads(body), headers={"X-Gateway-Signature": signature}
    )
    assert status == 202
    assert setup.get("/v1/cart-page?cartId=cached") == (200, expected)
    assert product_hits(setup, skus) == [1, 2]  # only the purged product was asked again


def test_fifty_clients_at_once_send_the_catalog_one_request_per_worker(setup: Setup) -> None:
    clients = 50
    with ThreadPoolExecutor(clients) as pool:
        replies = list(pool.map(lambda _: setup.get("/v1/catalog-summary"), range(clients)))
    assert replies == [(200, {"categories": 12})] * clients
    assert 1 <= setup.catalog.hits["/summary"] <= WORKERS  # dedupe is per process


def test_server_timing_names_skipped_calls_elements_and_cache_hits(setup: Setup) -> None:
    explain = {"X-Gateway-Explain": EXPLAIN_TOKEN}
    status, headers, _ = setup.server.get("/v1/cart-page?cartId=empty", headers=explain)
    assert status == 200
    assert 'recs;dur=0.0;desc="recs skipped attempts=0"' in headers["Server-Timing"]
    status, headers, _ = setup.server.get("/v1/cart-page?cartId=explained", headers=explain)
    assert status == 200
    assert 'desc="catalog 200 attempts=2 elements=2"' in headers["Server-Timing"]
    # the answers are now in the Redis-shared per-call cache: whichever worker serves this
    status, headers, _ = setup.server.get("/v1/cart-page?cartId=explained", headers=explain)
    assert status == 200
    assert 'desc="catalog 200 attempts=0 elements=2 cache"' in headers["Server-Timing"]
    assert product_hits(setup, CARTS["explained"]) == [1, 1]
    status, headers, _ = setup.server.get("/v1/cart-page?cartId=explained")
    assert status == 200 and "Server-Timing" not in headers
