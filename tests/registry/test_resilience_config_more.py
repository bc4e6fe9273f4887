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
        "endpoints[0].calls[0].stale_if_error_s: only optional calls (required: false) may be answered by a stale result",
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
