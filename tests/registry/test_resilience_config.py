"""Contract section 7's service fields: check with locations, import/export, compile, admin."""

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


def _with_resilience(document: dict[str, Any]) -> dict[str, Any]:
    inventory = document["services"]["inventory"]
    inventory["deadline_header"] = "X-Request-Deadline-Ms"
    inventory["breaker"] = {"failure_threshold": 500, "min_calls": 20, "failure_rate": 50}
    inventory["retry"] = {"max_retries": 2, "retry_on": ["5xx", "429"], "budget_percent": 20, "budget_min_per_s": 3}
    return document


def problems(document: Any) -> list[str]:
    return [str(problem) for problem in config_check(document)]


def test_the_fields_check_clean(document):
    assert problems(_with_resilience(document)) == []


def test_bad_values_are_located(document):
    inventory = _with_resilience(document)["services"]["inventory"]
    inventory["deadline_header"] = "X Deadline"
    inventory["breaker"] = {"min_calls": 0, "failure_rate": 150}
    inventory["retry"]["budget_percent"] = -1
    document["services"]["cart"]["deadline_header"] = "traceparent"
    document["services"]["cart"]["breaker"] = {"failure_rate": 50}
    document["services"]["tax"]["retry"] = {"budget_min_per_s": 3}
    assert problems(document) == [
        "services.cart.deadline_header: 'traceparent' is a header the gateway sets itself",
        "services.cart.breaker.min_calls: required with 'failure_rate'",
        "services.inventory.retry.budget_percent: must be at least 0, got -1",
        "services.inventory.breaker.min_calls: must be at least 1, got 0",
        "services.inventory.breaker.failure_rate: must be at most 100, got 150",
        "services.inventory.deadline_header: not a valid header name: 'X Deadline'",
        "services.tax.retry.budget_min_per_s: only used with 'budget_percent'",
    ]


@pytest.mark.django_db
def test_import_export_round_trip_and_the_plan(document):
    config_import(document=_with_resilience(document))
    exported = config_document_get()
    assert exported == normalize(document, DOCUMENT)
    inventory = exported["services"]["inventory"]
    assert inventory["deadline_header"] == "X-Request-Deadline-Ms"
    assert (inventory["breaker"]["min_calls"], inventory["breaker"]["failure_rate"]) == (20, 50.0)
    assert (inventory["retry"]["budget_percent"], inventory["retry"]["budget_min_per_s"]) == (20.0, 3.0)
    assert "deadline_header" not in exported["services"]["cart"]
    assert "min_calls" not in exported["services"]["cart"]["breaker"]
    config_import(document=exported)
    assert config_document_get() == exported
    service = compile_plan().services["inventory"]
    assert service.deadline_header == "X-Request-Deadline-Ms"
    assert (service.breaker.min_calls, service.breaker.failure_rate, service.breaker.rate_based) == (20, 50.0, True)
    assert (service.retry.budget_percent, service.retry.budget_min_per_s) == (20.0, 3.0)
    assert compile_plan().services["cart"].breaker.rate_based is False


@pytest.mark.django_db
def test_admin_edits_the_fields_and_checks_them(admin_client, document, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    config_import(document=document)
    service = models.Service.objects.get(name="tax")
    url = reverse("admin:registry_service_change", args=[service.pk])
    page = unescape(admin_client.get(url).content.decode())
    assert "Resilience beyond the basics" in page and "retry_budget_percent" in page
    data = {
        "name": "tax",
        "base_url": service.base_url,
        "timeout_ms": 300,
        "auth_type": "none",
        "breaker_failure_threshold": 5,
        "breaker_window_s": 60,
        "breaker_open_s": 30,
        "breaker_half_open_probes": 3,
        "retry_max_retries": 2,
        "retry_backoff": "exponential",
        "retry_base_ms": 100,
        "retry_on": ["5xx"],
        "bulkhead_max_concurrent": 100,
        "bulkhead_max_wait_ms": 0,
        "deadline_header": "X-Deadline-Ms",
        "breaker_min_calls": 20,
        "breaker_failure_rate": 50,
        "retry_budget_percent": 20,
        "retry_budget_min_per_s": 3,
    }
    assert admin_client.post(url, data).status_code == 302
    tax = config_document_get()["services"]["tax"]
    assert tax["deadline_header"] == "X-Deadline-Ms"
    assert (tax["breaker"]["min_calls"], tax["retry"]["budget_percent"]) == (20, 20.0)
    bad_data = data | {"breaker_failure_rate": "", "deadline_header": "a b"}
    bad = unescape(admin_client.post(url, bad_data).content.decode())
    assert "services.tax.breaker.failure_rate: required with 'min_calls'" in bad
    assert "services.tax.deadline_header: not a valid header name: 'a b'" in bad
