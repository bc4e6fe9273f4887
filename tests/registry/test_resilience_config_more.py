"""Contract section 7's call and endpoint fields (stale_if_error_s, hedge, response_schema):
check with locations, import/export round trip, compiled plan, admin."""

from __future__ import annotations

from html import unescape
from typing import Any

import pytest
from django.urls import reverse

from registry import models
from registry.compiler import compile_plan
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize
from registry.config.validation import config_check
from registry.selectors import config_document_get
from registry.services import config_import


def problems(document: Any) -> list[str]:
    return [str(problem) for problem in config_check(document)]


def _optional_index(document: dict[str, Any]) -> int:
    calls = document["endpoints"][0]["calls"]
    return next(i for i, c in enumerate(calls) if c.get("required") is False)


def _with_stale(document: dict[str, Any]) -> dict[str, Any]:
    document["endpoints"][0]["calls"][_optional_index(document)]["stale_if_error_s"] = 300
    return document


def test_stale_if_error_checks_clean_on_an_optional_call(document):
    assert problems(_with_stale(document)) == []


def test_stale_if_error_on_a_required_call_or_out_of_range_is_located(document):
    index = _optional_index(document)
    document["endpoints"][0]["calls"][0]["stale_if_error_s"] = 60
    document["endpoints"][0]["calls"][index]["stale_if_error_s"] = 0
    assert problems(document) == [
        "endpoints[0].calls[0].stale_if_error_s: "
        "only optional calls (required: false) may be answered by a stale result",
        f"endpoints[0].calls[{index}].stale_if_error_s: must be at least 1, got 0",
    ]


@pytest.mark.django_db
def test_stale_if_error_round_trips_and_compiles(document):
    config_import(document=_with_stale(document))
    exported = config_document_get()
    assert exported == normalize(document, DOCUMENT)
    index = _optional_index(document)
    assert exported["endpoints"][0]["calls"][index]["stale_if_error_s"] == 300
    assert "stale_if_error_s" not in exported["endpoints"][0]["calls"][0]
    config_import(document=exported)
    assert config_document_get() == exported
    calls = compile_plan().endpoints[0].calls
    assert calls[index].stale_if_error_s == 300 and calls[0].stale_if_error_s is None


@pytest.mark.django_db
def test_admin_edits_stale_if_error_and_checks_it(admin_client, document):
    config_import(document=document)
    endpoint = models.Endpoint.objects.get(name=document["endpoints"][0]["name"])
    url = reverse("admin:registry_endpoint_change", args=[endpoint.pk])
    page = unescape(admin_client.get(url).content.decode())
    assert "stale_if_error_s" in page
    data = _endpoint_form(endpoint)
    index = _optional_index(document)
    data[f"calls-{index}-stale_if_error_s"] = "120"
    response = admin_client.post(url, data)
    assert response.status_code == 302, unescape(response.content.decode())[-3000:]
    assert config_document_get()["endpoints"][0]["calls"][index]["stale_if_error_s"] == 120
    data["calls-0-stale_if_error_s"] = "30"
    bad = unescape(admin_client.post(url, data).content.decode())
    assert "only optional calls (required: false) may be answered by a stale result" in bad
    assert models.Call.objects.get(endpoint=endpoint, call_id="cart").stale_if_error_s is None


def _endpoint_form(endpoint: models.Endpoint) -> dict[str, Any]:
    """The change form's data as the admin renders it (the endpoint, its calls, no rate limits)."""
    from registry.admin.endpoint_admin import CallForm, EndpointForm

    data: dict[str, Any] = {}
    form = EndpointForm(instance=endpoint)
    for name, field in form.fields.items():
        value = form.initial.get(name)
        data[name] = field.prepare_value(value) if value is not None else ""
    calls = list(endpoint.calls.order_by("stage", "position", "id"))
    data |= {"calls-TOTAL_FORMS": len(calls), "calls-INITIAL_FORMS": len(calls)}
    data |= {"calls-MIN_NUM_FORMS": 0, "calls-MAX_NUM_FORMS": 1000}
    for index, call in enumerate(calls):
        call_form = CallForm(instance=call)
        data[f"calls-{index}-id"] = call.pk
        data[f"calls-{index}-endpoint"] = endpoint.pk
        for name, field in call_form.fields.items():
            value = call_form.initial.get(name)
            if isinstance(value, bool):
                if value:
                    data[f"calls-{index}-{name}"] = "on"
                continue
            data[f"calls-{index}-{name}"] = field.prepare_value(value) if value is not None else ""
    data |= {"rate_limits-TOTAL_FORMS": 0, "rate_limits-INITIAL_FORMS": 0}
    data |= {"rate_limits-MIN_NUM_FORMS": 0, "rate_limits-MAX_NUM_FORMS": 1000}
    return data


CONTRACT = {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}


def test_response_schema_checks_clean(document):
    document["endpoints"][0] |= {"response_schema": CONTRACT, "on_schema_violation": "fail"}
    assert problems(document) == []


def test_a_bad_response_schema_is_refused_with_its_location(document):
    document["endpoints"][0]["response_schema"] = {"properties": {"total": {"type": "numbr"}}}
    document["endpoints"][0]["on_schema_violation"] = "shout"
    document["endpoints"][1]["response_schema"] = {"items": [{"type": "string"}, {"minimum": "x"}]}
    assert problems(document) == [
        "endpoints[0].on_schema_violation: unknown value 'shout' (expected one of: log, fail)",
        "endpoints[0].response_schema.properties.total: not a valid JSON Schema: Unknown type",
        "endpoints[1].response_schema.items[1]: not a valid JSON Schema: minimum must be a number",
    ]


def test_remote_references_and_a_lone_action_are_refused(document):
    document["endpoints"][0]["response_schema"] = {"$ref": "https://schemas.example/checkout.json"}
    document["endpoints"][1]["on_schema_violation"] = "fail"
    assert problems(document) == [
        "endpoints[0].response_schema: not a valid JSON Schema: only local references ('#/...') are allowed, "
        "got 'https://schemas.example/checkout.json'",
        "endpoints[1].on_schema_violation: only used with 'response_schema'",
    ]


def test_gateway_check_command_prints_the_location(document, write_yaml, capsys):
    from django.core.management import call_command

    document["endpoints"][0]["response_schema"] = {"properties": {"total": {"minimum": "x"}}}
    with pytest.raises(SystemExit):
        call_command("gateway", "check", str(write_yaml(document)))
    out = capsys.readouterr()
    assert "endpoints[0].response_schema.properties.total: not a valid JSON Schema: minimum must be a number" in (
        out.out + out.err
    )


@pytest.mark.django_db
def test_response_schema_round_trips_and_compiles(document):
    document["endpoints"][0] |= {"response_schema": CONTRACT, "on_schema_violation": "fail"}
    config_import(document=document)
    exported = config_document_get()
    assert exported == normalize(document, DOCUMENT)
    assert exported["endpoints"][0]["response_schema"] == CONTRACT
    assert "response_schema" not in exported["endpoints"][1] and "on_schema_violation" not in exported["endpoints"][1]
    config_import(document=exported)
    assert config_document_get() == exported
    first, second = compile_plan().endpoints[:2]
    assert first.on_schema_violation == "fail" and first.response_contract.violation({"total": "x"}).field == "total"
    assert second.response_contract is None and second.on_schema_violation == "log"


@pytest.mark.django_db
def test_admin_edits_the_response_contract_and_checks_it(admin_client, document):
    config_import(document=document)
    endpoint = models.Endpoint.objects.get(name=document["endpoints"][0]["name"])
    url = reverse("admin:registry_endpoint_change", args=[endpoint.pk])
    assert "Response contract" in unescape(admin_client.get(url).content.decode())
    data = _endpoint_form(endpoint)
    data |= {"response_schema": '{"type": "object", "required": ["total"]}', "on_schema_violation": "fail"}
    response = admin_client.post(url, data)
    assert response.status_code == 302, unescape(response.content.decode())[-3000:]
    exported = config_document_get()["endpoints"][0]
    assert exported["response_schema"] == {"type": "object", "required": ["total"]}
    assert exported["on_schema_violation"] == "fail"
    data["response_schema"] = '{"type": "objekt"}'
    bad = unescape(admin_client.post(url, data).content.decode())
    assert "not a valid JSON Schema: Unknown type" in bad
    assert models.Endpoint.objects.get(pk=endpoint.pk).response_schema == {"type": "object", "required": ["total"]}


def test_hedge_checks_clean_and_bad_values_are_located(document):
    document["services"]["inventory"]["hedge"] = {"after_ms": 50}
    assert problems(document) == []
    timeout = document["services"]["cart"].get("timeout_ms", 1000)
    document["services"]["cart"]["hedge"] = {"after_ms": timeout}
    document["services"]["tax"]["hedge"] = {"after_ms": 0}
    document["services"]["pricing"]["hedge"] = {}
    assert problems(document) == [
        f"services.cart.hedge.after_ms: must be below the service's timeout_ms ({timeout}), or no hedge is ever sent",
        "services.pricing.hedge.after_ms: required key missing",
        "services.tax.hedge.after_ms: must be at least 1, got 0",
    ]


@pytest.mark.django_db
def test_hedge_round_trips_and_compiles(document):
    document["services"]["inventory"]["hedge"] = {"after_ms": 50}
    config_import(document=document)
    exported = config_document_get()
    assert exported == normalize(document, DOCUMENT)
    assert exported["services"]["inventory"]["hedge"] == {"after_ms": 50}
    assert "hedge" not in exported["services"]["cart"]
    config_import(document=exported)
    assert config_document_get() == exported
    services = compile_plan().services
    assert services["inventory"].hedge is not None and services["inventory"].hedge.after_ms == 50
    assert services["cart"].hedge is None


@pytest.mark.django_db
def test_admin_edits_hedge_and_checks_it(admin_client, document):
    config_import(document=document)
    service = models.Service.objects.get(name="tax")
    url = reverse("admin:registry_service_change", args=[service.pk])
    assert "hedge_after_ms" in unescape(admin_client.get(url).content.decode())
    from django.contrib import admin as django_admin

    from registry.admin.service_admin import ServiceAdmin

    form_class = ServiceAdmin(models.Service, django_admin.site).get_form(None, service)
    form = form_class(instance=service)
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name)
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = field.prepare_value(value) if value is not None else ""
    data["retry_on"] = list(service.retry_on)
    data["hedge_after_ms"] = "40"
    response = admin_client.post(url, data)
    assert response.status_code == 302, unescape(response.content.decode())[-2000:]
    assert config_document_get()["services"]["tax"]["hedge"] == {"after_ms": 40}
    data["hedge_after_ms"] = str(service.timeout_ms + 1)
    bad = unescape(admin_client.post(url, data).content.decode())
    assert f"services.tax.hedge.after_ms: must be below the service's timeout_ms ({service.timeout_ms})" in bad
