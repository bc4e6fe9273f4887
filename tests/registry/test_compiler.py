"""The compiler: models -> document -> Plan, templates compiled once and rendering."""

from __future__ import annotations

import pytest

from orchestration import plan
from registry.compiler import compile_plan, plan_from_document
from registry.services import config_import


def test_plan_from_document_has_the_stages(document):
    compiled = plan_from_document(document, version="7")
    summary = compiled.endpoints[0]
    assert compiled.version == "7"
    assert [[call.id for call in stage] for stage in summary.stages] == [
        ["cart"],
        ["inventory", "pricing", "shipping"],
        ["tax"],
    ]
    assert (summary.method, summary.path, summary.timeout_ms) == ("POST", "/summary", 2000)
    assert compiled.layer.base_path == "/v1/checkout"
    assert compiled.layer.rate_limits[3] == plan.RateLimitRule(scope="global", limit=10000, window_s=60.0)
    assert compiled.layer.auth.jwt == plan.JwtSettings(
        algorithms=("HS256",),
        secret_env="GATEWAY_JWT_SECRET",
        issuer="https://auth.example.com",
        audience="checkout",
    )


def test_services_carry_their_policies(document):
    services = plan_from_document(document, version="1").services
    assert services["cart"].retry == plan.RetryPolicy(
        max_retries=2, backoff="exponential", base_ms=100, jitter=False, retry_on=frozenset({"5xx", "timeout"})
    )
    assert services["payment"].auth == plan.DownstreamAuth(
        type="mtls",
        cert_file="/etc/gateway/payment.crt",
        key_file="/etc/gateway/payment.key",
        ca_file="/etc/gateway/ca.pem",
    )
    assert services["payment"].breaker == plan.BreakerPolicy(
        failure_threshold=3, window_s=30, open_s=15, half_open_probes=1
    )
    assert services["tax"].retry == plan.RetryPolicy()  # defaults fill what the file leaves out
    assert services["shipping"].bulkhead == plan.BulkheadPolicy(max_concurrent=20, max_wait_ms=50)
    assert services["payment"].avg_latency_ms is None


def test_templates_render(document):
    summary = plan_from_document(document, version="1").endpoints[0]
    cart, tax = summary.calls[0], summary.calls[4]
    context = {
        "request": {"body": {"cartId": "a/../b", "country": "DE"}, "query": {}, "headers": {}},
        "user": {"sub": "42"},
        "cart": {"items": [{"sku": "x"}, {"sku": "y"}]},
        "inventory": {"available": True},
        "pricing": {"subtotal": 10},
        "shipping": {"options": []},
        "tax": {"amount": 2},
    }
    assert cart.path.render(context) == "/carts/a%2F%2E%2E%2Fb"
    assert dict(cart.query)["include"].render(context) is None
    assert tax.body is not None and tax.body.render(context) == {"subtotal": 10, "country": "DE"}
    assert summary.response.render(context) == {
        "cart": {"items": [{"sku": "x"}, {"sku": "y"}], "itemCount": 2},
        "availability": True,
        "shipping": {"options": []},
        "total": 12,
        "note": "Order for 42",
    }


def test_cache_policy_compiles_tags_and_invalidation(document):
    dashboard = plan_from_document(document, version="1").endpoints[1]
    assert dashboard.cache.enabled and dashboard.cache.scope == "user"
    assert dashboard.cache.tags[0].render({"user": {"sub": "42"}}) == "user:42"
    rule = dashboard.cache.invalidate_on[0]
    assert (rule.event, rule.tags[0].render({"event": {"userId": "7"}})) == ("user.updated", "user:7")
    assert dashboard.rate_limits == (plan.RateLimitRule(scope="endpoint", limit=20, window_s=60.0),)


@pytest.mark.django_db
def test_compile_plan_from_the_database_equals_the_file(document, django_assert_max_num_queries):
    config_import(document=document)
    with django_assert_max_num_queries(6):
        from_db = compile_plan(version="v")
    assert from_db == plan_from_document(document, version="v")
    assert from_db.endpoints[1].calls[1].fallback == []


@pytest.mark.django_db
def test_compile_plan_labels_the_plan_with_the_database_version(document):
    version = config_import(document=document)
    assert compile_plan().version == version
