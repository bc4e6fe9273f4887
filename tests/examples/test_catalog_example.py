"""The catalog BFF example (examples/catalog.yaml), a second layer whose product service
speaks GraphQL: it passes the check, and the real executor serves it against the
simulator's GraphQL catalog (graphql-core) and REST inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestration.context import RequestContext
from orchestration.downstream import DownstreamPool
from orchestration.errors import Failure, failure_to_error
from orchestration.executor import Executor, Success
from registry.config.loading import config_read
from registry.config.plan import plan_from_document
from registry.config.validation import config_check
from tests.examples.test_simulator import http

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


def executor_for(sim: Any, **base_urls: str) -> Executor:
    document = yaml.safe_load(CATALOG.read_text())
    for name, service in document["services"].items():
        service["base_url"] = base_urls.get(name, sim.url(name))
    plan = plan_from_document(document, version="example")
    return Executor(plan, DownstreamPool(plan.services, environ={}))


def serve(executor: Executor, name: str, **path: str) -> Success | Failure:
    endpoint = next(e for e in executor.plan.endpoints if e.name == name)
    return executor.run(endpoint, RequestContext(method="GET", path_params=path))


def test_the_catalog_example_passes_the_check_and_is_a_shared_cdn_cached_session_layer() -> None:
    document = config_read(CATALOG)
    assert config_check(document) == []
    assert document["layer"]["auth"]["type"] == "session"
    caches = {e["name"]: e["cache"] for e in document["endpoints"]}
    assert caches["catalog"] == {"ttl_s": 300, "scope": "shared", "cdn": True, "tags": ["catalog"]}
    assert all("catalog" in cache["tags"] and cache["scope"] == "shared" and cache["cdn"] for cache in caches.values())
    assert all("graphql" in e["calls"][0] for e in document["endpoints"])


def test_base_urls_and_latencies_are_the_simulators(simulator: Any) -> None:
    specs = {spec.name: spec for spec in simulator.SERVICES}
    for name, service in config_read(CATALOG)["services"].items():
        assert service["base_url"] == f"http://127.0.0.1:{specs[name].port}", name
        assert service["avg_latency_ms"] == specs[name].latency_ms, name


def test_the_catalog_listing_is_the_graphql_answers_data(sim: Any) -> None:
    result = serve(executor_for(sim), "catalog")
    assert isinstance(result, Success) and not result.partial
    assert result.body["count"] == 3
    assert result.body["products"][0] == {
        "sku": "SKU-CASE",
        "name": "Protective Case",
        "price": 2999,
        "currency": "USD",
    }


def test_a_product_page_joins_graphql_product_and_rest_stock(sim: Any) -> None:
    result = serve(executor_for(sim), "product", sku="SKU-HEADPHONES")
    assert result == Success(
        {
            "product": {"sku": "SKU-HEADPHONES", "name": "Wireless Headphones", "price": 7999, "currency": "USD"},
            "inStock": 12,
        }
    )


def test_an_unknown_product_is_null_and_asks_inventory_nothing(sim: Any) -> None:
    assert serve(executor_for(sim), "product", sku="SKU-NOPE") == Success({"product": None, "inStock": None})


def test_inventory_down_degrades_the_page_and_catalog_down_fails_it(sim: Any) -> None:
    closed = "http://127.0.0.1:9"  # discard port: nothing listens
    result = serve(executor_for(sim, inventory=closed), "product", sku="SKU-CASE")
    assert isinstance(result, Success) and result.failed_services == ("inventory",)
    assert result.body["product"]["name"] == "Protective Case" and result.body["inStock"] is None
    failure = serve(executor_for(sim, catalog=closed), "catalog")
    assert isinstance(failure, Failure)
    error = failure_to_error(failure)
    assert (error.status, error.code, list(error.failed_services)) == (502, "DOWNSTREAM_FAILURE", ["catalog"])


def test_the_simulators_catalog_speaks_graphql(sim: Any) -> None:
    url = sim.url("catalog") + "/graphql"
    query = "query($sku: ID!) { product(sku: $sku) { name stock } }"
    assert http(url, "POST", {"query": query, "variables": {"sku": "SKU-CASE"}}) == (
        200,
        {"data": {"product": {"name": "Protective Case", "stock": 3}}},
    )
    status, body = http(url, "POST", {"query": query, "variables": {}})  # a request error: no "data"
    assert status == 200 and "data" not in body
    assert body["errors"][0]["message"] == "Variable '$sku' of required type 'ID!' was not provided."
    status, body = http(url, "POST", {"query": "{ product(sku: 1) { nope } }"})
    assert status == 200 and "data" not in body and "Cannot query field 'nope'" in body["errors"][0]["message"]
