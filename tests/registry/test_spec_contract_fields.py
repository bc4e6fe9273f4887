"""The spec shows the fields of contract sections 7 and 8 (issues 14 and 15) in the
template's sections and words, and nothing of them where they are not set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestration.plan import GraphqlRequest
from orchestration.templates import compile_template
from registry.config.loading import config_read
from registry.config.plan import plan_from_document
from registry.config.validation import config_check
from registry.spec import graphql_operation, spec_build, spec_markdown

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
INTROSPECTION = {
    "url": "https://auth.example.com/introspect",
    "client_id_env": "GATEWAY_INTROSPECTION_CLIENT_ID",
    "client_secret_env": "GATEWAY_INTROSPECTION_SECRET",
    "cache_s": 45,
    "user_claim": "sub",
}


def resilient_checkout() -> dict[str, Any]:
    """Checkout with issue 14's fields: a stale stand-in, a hedge, two response contracts."""
    document = config_read(EXAMPLES / "checkout.yaml")
    document["services"]["inventory"]["hedge"] = {"after_ms": 50}
    summary, dashboard = document["endpoints"][0], document["endpoints"][1]
    next(call for call in summary["calls"] if call["id"] == "shipping")["stale_if_error_s"] = 300
    summary["response_schema"] = {"type": "object", "required": ["total"]}
    summary["on_schema_violation"] = "fail"
    dashboard["response_schema"] = {"type": "object"}  # on_schema_violation: log, the default
    return document


def storefront_catalog() -> dict[str, Any]:
    """The catalog example with issue 15's fields: a list of client auth types, a P99 target."""
    document = config_read(EXAMPLES / "catalog.yaml")
    document["layer"]["auth"] = {
        "type": ["session", "oauth2_introspection"],
        "session": {},
        "oauth2_introspection": dict(INTROSPECTION),
    }
    document["layer"]["rate_limits"].append({"scope": "user", "limit": 100, "window_s": 60})
    document["endpoints"][0]["p99_target_ms"] = 400
    return document


def markdown(document: dict[str, Any]) -> str:
    assert [str(problem) for problem in config_check(document)] == []
    return spec_markdown(spec_build(plan_from_document(document, version="t"), date="d"))


@pytest.fixture(scope="module")
def checkout() -> str:
    return markdown(resilient_checkout())


@pytest.fixture(scope="module")
def catalog() -> str:
    return markdown(storefront_catalog())


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n")[1].split("\n## ")[0]


def test_stale_if_error_is_a_call_note_and_an_error_handling_row(checkout: str) -> None:
    assert "| 2 (parallel) | Shipping: POST /estimate; stale ≤ 300s on error | No | 500ms | Return null |" in checkout
    assert (
        "| Optional service fails, a recent good result on hand (stale_if_error_s: shipping ≤ 300s) | 200 "
        "| The call's last good result for the same request stands in for the fallback; staleServices names it |"
        in section(checkout, "Error Handling Strategy")
    )


def test_hedge_is_beside_the_services_retries(checkout: str) -> None:
    retries = checkout.split("### Retry Policy")[1]
    assert (
        "| Inventory Service | 2 (hedged: a second attempt after 50ms unanswered) | Exponential: 100ms, 200ms "
        "| 5xx, timeout |" in retries
    )
    assert "| Cart Service | 2 | Exponential: 100ms, 200ms | 5xx, timeout |" in retries


def test_response_contract_is_an_endpoint_setting_and_fail_is_an_error_row(checkout: str) -> None:
    endpoints = checkout.split("### Endpoint ")
    assert "| Response contract | JSON Schema, on violation: fail (502 CONTRACT_VIOLATION) |" in endpoints[1]
    assert "| Response contract | JSON Schema, on violation: log (count + log line) |" in endpoints[2]
    assert "Response contract" not in endpoints[3]  # cart-page has no response_schema
    assert (
        "| Assembled response breaks the endpoint's response_schema (checkout-summary) | 502 "
        "| Envelope CONTRACT_VIOLATION |" in section(checkout, "Error Handling Strategy")
    )


def test_graphql_calls_name_their_operation(catalog: str) -> None:
    assert "| Downstream Calls | Catalog: GraphQL query Listing (POST /graphql) |" in catalog
    assert "| 1 | Catalog: GraphQL query Listing (POST /graphql) | Yes | 400ms | Fail request |" in catalog
    assert "| 1 | Catalog: GraphQL query (POST /graphql) | Yes | 400ms | Fail request |" in catalog


def test_cdn_is_in_the_cache_ttl_and_the_caching_strategy(catalog: str) -> None:
    assert "| Cache TTL | 300s (shared, CDN) |" in catalog
    assert (
        "| GET /v1/catalog/products | Redis + CDN: gateway response cache, Redis-shared (shared); CDN (s-maxage, "
        "Surrogate-Key; purged via GATEWAY_CDN_PURGE_URL) | 300s | TTL only (entry tags: catalog) |"
        in section(catalog, "Caching Strategy")
    )


def test_p99_targets_are_the_alert_thresholds_per_endpoint(catalog: str) -> None:
    monitoring = section(catalog, "Monitoring and Observability")
    assert (
        "| Total endpoint latency P99 (catalog) | > 400ms (p99_target_ms) (GatewayEndpointLatencyP99High) | Slack |"
        in monitoring
    )
    assert (
        "| Total endpoint latency P99 (product) | > 800ms (80% of its 1000ms timeout) "
        "(GatewayEndpointLatencyP99High) | Slack |" in monitoring
    )
    assert "| Downstream error rate | > 5% over 5 min (GatewayDownstreamErrorRateHigh) | PagerDuty |" in monitoring


def test_client_auth_list_shows_introspection_url_and_cache_never_its_credentials(catalog: str) -> None:
    assert (
        "| Authentication | Session cookie (CSRF token on unsafe methods) or OAuth2 introspection "
        "(https://auth.example.com/introspect; active answers cached ≤ 45s; user claim sub) |" in catalog
    )
    assert (
        "| Per-user | 100 req/min | User ID from the session's Django user or OAuth2 introspection (sub) "
        "| 429 + Retry-After |" in catalog
    )
    assert "GATEWAY_INTROSPECTION" not in catalog


def test_without_the_fields_none_of_their_words_appear() -> None:
    document = config_read(EXAMPLES / "catalog.yaml")
    for endpoint in document["endpoints"]:
        endpoint["cache"].pop("cdn")
    text = markdown(document) + markdown(config_read(EXAMPLES / "checkout.yaml"))
    for words in ("stale", "hedged", "Response contract", "CONTRACT_VIOLATION", "CDN", "p99_target_ms", "P99 ("):
        assert words not in text


@pytest.mark.parametrize(
    ("query", "operation_name", "words"),
    [
        ("query Listing { products { sku } }", None, "query Listing"),
        ("query($id: ID!) { product(id: $id) { name } }", None, "query"),
        ("{ products { query } }", None, "query"),
        ("mutation AddItem($sku: ID!) { add(sku: $sku) { ok } }", None, "mutation AddItem"),
        ("query A { a } mutation B { b }", "B", "mutation B"),
    ],
)
def test_graphql_operation(query: str, operation_name: str | None, words: str) -> None:
    request = GraphqlRequest(query, compile_template({}, "variables"), operation_name)
    assert graphql_operation(request) == words
