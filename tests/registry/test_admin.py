"""The registry admin through the Django test client."""

from __future__ import annotations

import json
from html import unescape
from typing import Any

import pytest
from django.urls import reverse

from registry import models
from registry.selectors import config_version_read
from registry.services import config_import

pytestmark = pytest.mark.django_db


@pytest.fixture
def imported(document):
    config_import(document=document)
    return document


def html(response: Any) -> str:
    assert response.status_code == 200
    return unescape(response.content.decode())


def endpoint_post_data(endpoint: models.Endpoint, **changes: Any) -> dict[str, Any]:
    """What the change form posts back for ``endpoint`` and its calls, with ``changes``."""
    data: dict[str, Any] = {
        "name": endpoint.name,
        "method": endpoint.method,
        "path": endpoint.path,
        "purpose": endpoint.purpose,
        "timeout_ms": endpoint.timeout_ms,
        "response": json.dumps(endpoint.response),
        "cache_ttl_s": endpoint.cache_ttl_s,
        "cache_scope": endpoint.cache_scope,
        "cache_tags": json.dumps(endpoint.cache_tags),
        "invalidate_on": json.dumps(endpoint.invalidate_on),
        "rate_limits-TOTAL_FORMS": 0,
        "rate_limits-INITIAL_FORMS": 0,
    }
    calls = list(endpoint.calls.order_by("stage", "position", "id"))
    data |= {"calls-TOTAL_FORMS": len(calls), "calls-INITIAL_FORMS": len(calls)}
    for i, call in enumerate(calls):
        data |= {
            f"calls-{i}-id": call.pk,
            f"calls-{i}-endpoint": endpoint.pk,
            f"calls-{i}-call_id": call.call_id,
            f"calls-{i}-service": call.service_id,
            f"calls-{i}-stage": call.stage,
            f"calls-{i}-method": call.method,
            f"calls-{i}-path": call.path,
            f"calls-{i}-query": json.dumps(call.query),
            f"calls-{i}-headers": json.dumps(call.headers),
            f"calls-{i}-body": json.dumps(call.body),
            f"calls-{i}-fallback": json.dumps(call.fallback),
            f"calls-{i}-timeout_ms": call.timeout_ms or "",
        }
        data |= {f"calls-{i}-{flag}": "on" for flag in ("has_body", "required", "idempotent") if getattr(call, flag)}
    return data | changes


def endpoint_url(name: str) -> str:
    return reverse("admin:registry_endpoint_change", args=[models.Endpoint.objects.get(name=name).pk])


def test_services_list_shows_the_registry_at_a_glance(admin_client, imported):
    page = html(admin_client.get(reverse("admin:registry_service_changelist")))
    assert "Cart Team" in page and "http://127.0.0.1:9101" in page and "99.95" in page and ">45<" in page
    assert "5 failures/60s, open 30s, 3 probes" in page
    assert "2 retries, exponential from 100 ms, on 5xx, timeout" in page
    assert "no retries" in page  # shipping


def test_services_list_search(admin_client, imported):
    page = html(admin_client.get(reverse("admin:registry_service_changelist"), {"q": "Logistics"}))
    assert "http://127.0.0.1:9105" in page and "http://127.0.0.1:9101" not in page


def test_endpoint_list_shows_cache_tags_and_the_events_that_purge_them(admin_client, imported):
    page = html(admin_client.get(reverse("admin:registry_endpoint_changelist")))
    assert "60 s user · tags user:{{ user.sub }} · purged by user.updated → user:{{ event.userId }}" in page
    assert "not cached" in page  # checkout-summary (POST)


def test_endpoint_change_page_edits_calls_inline(admin_client, imported):
    page = html(admin_client.get(endpoint_url("checkout-summary")))
    for call_id in ("cart", "inventory", "pricing", "shipping", "tax"):
        assert f'name="calls-{["cart", "inventory", "pricing", "shipping", "tax"].index(call_id)}-call_id"' in page
        assert f'value="{call_id}"' in page
    assert '"itemCount": "{{ length(cart.items) }}"' in page


def test_saving_an_unknown_call_reference_shows_the_checker_message(admin_client, imported):
    endpoint = models.Endpoint.objects.get(name="checkout-summary")
    before = config_version_read()
    data = endpoint_post_data(endpoint, **{"calls-2-path": "/quote/{{ crt.id }}"})
    page = html(admin_client.post(endpoint_url("checkout-summary"), data))
    assert "endpoints[0].calls[2].path: unknown call 'crt'" in page
    assert models.Call.objects.get(endpoint=endpoint, call_id="pricing").path == "/quote"
    assert config_version_read() == before


def test_saving_a_response_that_reads_an_unknown_call_is_refused(admin_client, imported):
    endpoint = models.Endpoint.objects.get(name="checkout-summary")
    response = "total: '{{ taxes.amount }}'\n"
    page = html(admin_client.post(endpoint_url("checkout-summary"), endpoint_post_data(endpoint, response=response)))
    assert "endpoints[0].response.total: unknown call 'taxes'" in page


def test_response_that_is_not_yaml_is_one_line_on_the_field(admin_client, imported):
    endpoint = models.Endpoint.objects.get(name="checkout-summary")
    data = endpoint_post_data(endpoint, response="total: [1,\n  x: 2")
    page = html(admin_client.post(endpoint_url("checkout-summary"), data))
    assert "response: not valid YAML: expected ',' or ']', but got '<stream end>' at line 2, column 7" in page


def test_call_timeout_above_the_total_is_shown_on_the_call(admin_client, imported):
    endpoint = models.Endpoint.objects.get(name="checkout-summary")
    page = html(admin_client.post(endpoint_url("checkout-summary"), endpoint_post_data(endpoint, timeout_ms=150)))
    assert "endpoints[0].calls[0].timeout_ms: 200 ms is above the endpoint's total timeout_ms (150)" in page


def test_a_valid_save_applies_and_bumps_the_version(admin_client, imported):
    endpoint = models.Endpoint.objects.get(name="checkout-summary")
    before = config_version_read()
    response = "summary:\n  cart: '{{ cart }}'\n  tax: '{{ tax.amount }}'\n"
    answer = admin_client.post(endpoint_url("checkout-summary"), endpoint_post_data(endpoint, response=response))
    assert answer.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.response == {"summary": {"cart": "{{ cart }}", "tax": "{{ tax.amount }}"}}
    assert int(config_version_read().split("-")[0]) == int(before.split("-")[0]) + 1


def test_service_save_bumps_and_delete_bumps(admin_client, imported):
    service = models.Service.objects.get(name="tax")
    url = reverse("admin:registry_service_change", args=[service.pk])
    data = {
        "name": "tax",
        "base_url": "http://127.0.0.1:9206",
        "owner": "Finance Team",
        "timeout_ms": 300,
        "auth_type": "none",
        "breaker_failure_threshold": 5,
        "breaker_window_s": 60,
        "breaker_open_s": 30,
        "breaker_half_open_probes": 3,
        "retry_max_retries": 0,
        "retry_backoff": "exponential",
        "retry_base_ms": 100,
        "retry_on": ["timeout", "5xx"],
        "bulkhead_max_concurrent": 100,
        "bulkhead_max_wait_ms": 0,
    }
    assert admin_client.post(url, data).status_code == 302
    service.refresh_from_db()
    assert (service.base_url, service.retry_on) == ("http://127.0.0.1:9206", ["5xx", "timeout"])
    assert config_version_read().startswith("2-")
    bad = html(admin_client.post(url, data | {"auth_type": "bearer", "auth_token_env": "sk-live-123"}))
    assert "services.tax.auth.token_env: must name an environment variable" in bad
    assert config_version_read().startswith("2-")


def test_api_key_revoke_action(admin_client):
    admin_client.post(reverse("admin:registry_apikey_add"), {"name": "mobile", "subject": "42"})
    key = models.ApiKey.objects.get()
    admin_client.post(reverse("admin:registry_apikey_changelist"), {"action": "revoke", "_selected_action": [key.pk]})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_no_secret_value_on_any_admin_page(admin_client, imported, monkeypatch):
    monkeypatch.setenv("INVENTORY_TOKEN", "s3cr3t-inventory-token-value")
    monkeypatch.setenv("GATEWAY_JWT_SECRET", "s3cr3t-jwt-value")
    monkeypatch.setenv("PRICING_API_KEY", "s3cr3t-pricing-key")
    urls = [
        reverse("admin:registry_service_changelist"),
        reverse("admin:registry_service_change", args=[models.Service.objects.get(name="inventory").pk]),
        reverse("admin:registry_service_change", args=[models.Service.objects.get(name="pricing").pk]),
        reverse("admin:registry_layer_change", args=[models.Layer.objects.get().pk]),
        reverse("admin:registry_endpoint_changelist"),
        endpoint_url("checkout-summary"),
    ]
    for url in urls:
        page = html(admin_client.get(url))
        assert "s3cr3t" not in page, url
    assert "INVENTORY_TOKEN" in html(admin_client.get(urls[1]))


def test_layer_page_has_rate_limits_inline(admin_client, imported):
    page = html(admin_client.get(reverse("admin:registry_layer_change", args=[models.Layer.objects.get().pk])))
    assert 'name="rate_limits-3-limit"' in page and 'value="10000"' in page


def test_admin_delete_bumps_the_version(admin_client, imported):
    url = reverse("admin:registry_endpoint_delete", args=[models.Endpoint.objects.get(name="dashboard").pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert list(models.Endpoint.objects.values_list("name", flat=True)) == ["checkout-summary"]
    assert config_version_read().startswith("2-")
