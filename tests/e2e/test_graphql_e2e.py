"""GraphQL downstream calls through gunicorn (two gevent workers, PostgreSQL, Redis)
against a real GraphQL server (graphql-core behind a loopback fake downstream):
the POST the service gets, ``data`` in the response, a partial GraphQL result used,
and errors without data as 502 ``DOWNSTREAM_FAILURE`` (required) or a partial
response with the fallback (optional) — contract sections 2 and 8."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.support.fake_downstream import FakeDownstream
from tests.support.graphql_service import GraphqlService

pytestmark = pytest.mark.e2e

PRODUCT = "query($id: ID!) { product(id: $id) { name price rating } }"


def product_endpoint(name: str, path: str, query: str, *, required: bool) -> dict[str, Any]:
    call: dict[str, Any] = {
        "id": "product",
        "service": "catalog",
        "stage": 1,
        "path": "/graphql",
        "required": required,
        "graphql": {"query": query, "variables": {"id": "{{ request.query.id }}"} if "$id" in query else {}},
    }
    if not required:
        call["fallback"] = {"product": None}
    return {
        "name": name,
        "method": "GET",
        "path": path,
        "timeout_ms": 3000,
        "calls": [call],
        "response": {"product": "{{ product.product }}"},
    }


def config(catalog_url: str) -> str:
    document = {
        "version": 1,
        "layer": {"name": "GraphQL", "base_path": "/v1"},
        "services": {"catalog": {"base_url": catalog_url, "timeout_ms": 2000}},
        "endpoints": [
            product_endpoint("product", "/product", PRODUCT, required=True),
            product_endpoint("broken", "/broken", "{ broken }", required=True),
            product_endpoint("broken-lenient", "/broken-lenient", "{ broken }", required=False),
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


class Setup:
    def __init__(self, server: GatewayServer, fake: FakeDownstream, graphql: GraphqlService) -> None:
        self.server, self.fake, self.graphql = server, fake, graphql

    def get(self, path: str) -> tuple[int, Any]:
        status, _, raw = self.server.get(path)
        return status, json.loads(raw)


@pytest.fixture(scope="module")
def setup(
    module_gateway_server: Callable[..., GatewayServer], module_fake_downstream: Callable[..., FakeDownstream]
) -> Setup:
    graphql = GraphqlService()
    fake = module_fake_downstream({"/graphql": graphql.route})
    database, redis_db = isolated_targets("gql15", 15)
    server = module_gateway_server(config(fake.url), {}, workers=2, database=database, redis_db=redis_db)
    return Setup(server, fake, graphql)


def test_the_gateway_posts_the_query_and_serves_the_answers_data(setup: Setup) -> None:
    before = len(setup.graphql.bodies)
    assert setup.get("/v1/product?id=p-1") == (
        200,
        {"product": {"name": "Wireless Headphones", "price": 7999, "rating": 4.6}},
    )
    assert setup.graphql.bodies[before:] == [{"query": PRODUCT, "variables": {"id": "p-1"}}]
    assert setup.fake.headers["/graphql"][-1]["content-type"] == "application/json"


def test_errors_beside_data_serve_the_data_with_the_failed_field_null(setup: Setup) -> None:
    assert setup.get("/v1/product?id=p-norating") == (
        200,
        {"product": {"name": "Protective Case", "price": 2999, "rating": None}},
    )


def test_errors_without_data_are_502_downstream_failure_for_a_required_call(setup: Setup) -> None:
    for path in ("/v1/product", "/v1/broken"):  # no $id: a request error; broken: data null
        hits = setup.fake.hits["/graphql"]
        status, body = setup.get(path)
        assert status == 502, body
        assert body["error"]["code"] == "DOWNSTREAM_FAILURE"
        assert (body["error"]["failedServices"], body["error"]["partialData"], body["data"]) == (["catalog"], False, {})
        assert setup.fake.hits["/graphql"] == hits + 1  # asked once: not retried


def test_errors_without_data_give_an_optional_call_its_fallback(setup: Setup) -> None:
    assert setup.get("/v1/broken-lenient") == (
        200,
        {"product": None, "partialData": True, "failedServices": ["catalog"]},
    )


def test_graphql_errors_never_open_the_breaker(setup: Setup) -> None:
    for _ in range(6):  # over the default failure_threshold of 5
        assert setup.get("/v1/broken")[0] == 502
    assert setup.get("/v1/product?id=p-2")[0] == 200
