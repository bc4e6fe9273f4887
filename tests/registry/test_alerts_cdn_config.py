"""Issue 15b's endpoint fields (contract section 8): ``p99_target_ms`` and ``cache.cdn``.

Check with locations, import/export round trip, the compiled plan, the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from registry import models
from registry.compiler import compile_plan
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize
from registry.config.validation import config_check
from registry.selectors import config_document_get
from registry.services import config_import
from tests.registry.test_admin import endpoint_post_data, endpoint_url, html

CDN_USER = (
    "endpoints[1].cache.cdn: cdn is refused with scope 'user': a CDN serves its copy to every client; "
    "only scope: shared entries (one answer for everyone) may be cached by a CDN"
)


def problems(document: Any) -> list[str]:
    return [str(problem) for problem in config_check(document)]


def _catalog(document: dict[str, Any]) -> dict[str, Any]:
    """The dashboard made a shared CDN endpoint that reads nothing of the client."""
    dashboard = document["endpoints"][1]
    dashboard["calls"] = [c for c in dashboard["calls"] if c["service"] != "cart"]
    dashboard["response"] = {"userId": "{{ request.path.user_id }}", "paymentMethods": "{{ payment_methods }}"}
    dashboard["cache"] = {
        "ttl_s": 300,
        "scope": "shared",
        "cdn": True,
        "tags": ["catalog", "user:{{ request.path.user_id }}"],
    }
    dashboard["p99_target_ms"] = 400
    return document


def test_the_fields_check_clean(document):
    assert problems(_catalog(document)) == []


def test_cdn_on_a_user_scoped_endpoint_is_refused(document):
    document["endpoints"][1]["cache"]["cdn"] = True  # dashboard: scope user
    assert problems(document) == [CDN_USER]


def test_cdn_without_a_cache_is_refused(document):
    document["endpoints"][0]["cache"] = {"ttl_s": 0, "cdn": True}
    assert problems(document) == ["endpoints[0].cache.cdn: cdn needs a cached endpoint: set ttl_s above 0"]


def test_cdn_on_an_endpoint_whose_shared_scope_is_refused_is_refused(document):
    """The dashboard forwards the client's token and reads the user: shared is refused, so cdn is."""
    document["endpoints"][1]["cache"] |= {"scope": "shared", "cdn": True}
    found = problems(document)
    assert found and all(p.startswith("endpoints[1].cache.scope: a shared entry would serve") for p in found)


def test_bad_targets_are_located(document):
    document["endpoints"][0]["p99_target_ms"] = 0
    document["endpoints"][1]["p99_target_ms"] = 1501  # timeout_ms 1500
    document["endpoints"][1]["cache"]["cdn"] = "yes"
    assert problems(document) == [
        "endpoints[0].p99_target_ms: must be at least 1, got 0",
        "endpoints[1].p99_target_ms: p99_target_ms 1501 is above the endpoint's timeout_ms 1500: "
        "the gateway answers by its deadline, so this alert could never fire",
        "endpoints[1].cache.cdn: expected true or false, got 'yes'",
    ]


@pytest.mark.django_db
def test_import_export_round_trip_and_the_plan(document):
    config_import(document=_catalog(document))
    exported = config_document_get()
    assert exported == normalize(document, DOCUMENT)
    dashboard, summary = exported["endpoints"][1], exported["endpoints"][0]
    assert (dashboard["p99_target_ms"], dashboard["cache"]["cdn"]) == (400, True)
    assert "p99_target_ms" not in summary and summary["cache"]["cdn"] is False
    config_import(document=exported)
    assert config_document_get() == exported
    plan = {e.name: e for e in compile_plan().endpoints}
    assert (plan["dashboard"].cache.cdn, plan["dashboard"].p99_target_s) == (True, 0.4)
    assert plan["checkout-summary"].cache.cdn is False
    assert plan["checkout-summary"].p99_target_s == pytest.approx(2.0 * 0.8)  # timeout_ms 2000, no target


@pytest.mark.django_db
def test_admin_edits_the_fields_and_checks_them(admin_client: Client, document):
    config_import(document=document)
    dashboard = models.Endpoint.objects.get(name="dashboard")
    page = html(admin_client.get(endpoint_url("dashboard")))
    assert "p99_target_ms" in page and "cache_cdn" in page
    refused = html(admin_client.post(endpoint_url("dashboard"), endpoint_post_data(dashboard, cache_cdn="on")))
    assert CDN_USER.replace("endpoints[1]", "endpoints[0]") in refused
    too_high = endpoint_post_data(dashboard, p99_target_ms=1600)
    assert "p99_target_ms 1600 is above the endpoint's timeout_ms 1500" in html(
        admin_client.post(endpoint_url("dashboard"), too_high)
    )
    assert (
        admin_client.post(endpoint_url("dashboard"), endpoint_post_data(dashboard, p99_target_ms=900)).status_code
        == 302
    )
    assert config_document_get()["endpoints"][1]["p99_target_ms"] == 900
    assert models.Endpoint.objects.get(name="dashboard").cache_cdn is False
