"""The admin REST API (contract section 5) in process, against the real PostgreSQL:
auth (token, staff session), model permissions, ETag/If-Match, problems, versions,
rollback, dependents, throttles, schema; every error is the envelope."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from registry import models
from registry.api.base import CONFIG_READ_PERMS, CONFIG_WRITE_PERMS, ROLLBACK_PERMS
from registry.services import config_import

pytestmark = pytest.mark.django_db
API = "/api/admin/v1/"


def user_with(username: str, perms: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(username, password="pw-" + username)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return user


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def imported(document, monkeypatch, tmp_path) -> dict[str, Any]:
    """The Checkout BFF imported, with the secrets it references present (a rollback checks)."""
    for name in ("GATEWAY_JWT_SECRET", "PRICING_API_KEY", "CART_TOKEN", "TAX_TOKEN", "INVENTORY_TOKEN"):
        monkeypatch.setenv(name, "s3cret")
    for key in list(document["services"]["payment"]["auth"]):
        if key.endswith("_file"):
            (tmp_path / key).write_text("pem")
            document["services"]["payment"]["auth"][key] = str(tmp_path / key)
    config_import(document=document)
    return document


@pytest.fixture
def pipeline() -> APIClient:
    return client_for(user_with("pipeline", CONFIG_READ_PERMS + CONFIG_WRITE_PERMS + ROLLBACK_PERMS))


def shorter_shipping(document: dict[str, Any], timeout_ms: int) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    changed["endpoints"][0]["calls"][3]["timeout_ms"] = timeout_ms
    return changed


def test_no_credentials_is_401_and_bad_token_too(imported):
    for client in (APIClient(), APIClient(HTTP_AUTHORIZATION="Token nope")):
        response = client.get(API + "config")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == "Token"
        assert response.json()["error"]["code"] == "UNAUTHENTICATED" and response.json()["data"] == {}


def test_credentials_without_the_permission_are_403(imported, document):
    reader = client_for(user_with("reader", CONFIG_READ_PERMS))
    assert reader.get(API + "config").status_code == 200
    response = reader.put(API + "config", document, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 403 and response.json()["error"]["code"] == "FORBIDDEN"
    assert reader.post(API + "versions/1/rollback").status_code == 403
    assert client_for(user_with("nobody")).get(API + "config").status_code == 403
    assert models.ConfigRevision.objects.count() == 1  # nothing written


def test_get_config_has_the_version_and_its_etag(imported, pipeline):
    response = pipeline.get(API + "config")
    assert response.status_code == 200 and response["ETag"] == '"1"'
    body = response.json()
    assert body["version"] == 1 and body["config"]["endpoints"][0]["name"] == "checkout-summary"


def test_put_with_if_match_makes_a_version_with_source_api(imported, pipeline):
    response = pipeline.put(
        API + "config",
        shorter_shipping(imported, 300),
        format="json",
        HTTP_IF_MATCH='"1"',
        HTTP_X_CHANGE_COMMENT="faster",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"version": 2} and response["ETag"] == '"2"'
    revision = models.ConfigRevision.objects.get(number=2)
    assert (revision.source, revision.who, revision.comment) == ("api", "pipeline", "faster")
    assert revision.summary == "endpoint checkout-summary: calls.shipping.timeout_ms 500 → 300"
    assert models.Call.objects.get(call_id="shipping").timeout_ms == 300


def test_put_racing_another_change_is_412_and_writes_nothing(imported, pipeline):
    assert (
        pipeline.put(API + "config", shorter_shipping(imported, 300), format="json", HTTP_IF_MATCH='"1"').status_code
        == 200
    )
    late = pipeline.put(API + "config", shorter_shipping(imported, 250), format="json", HTTP_IF_MATCH='"1"')
    assert late.status_code == 412 and late.json()["error"]["code"] == "PRECONDITION_FAILED"
    assert models.Call.objects.get(call_id="shipping").timeout_ms == 300
    assert models.ConfigRevision.objects.count() == 2


def test_put_without_if_match_is_428(imported, pipeline):
    response = pipeline.put(API + "config", shorter_shipping(imported, 300), format="json")
    assert response.status_code == 428 and response.json()["error"]["code"] == "PRECONDITION_REQUIRED"
    assert models.ConfigRevision.objects.count() == 1


def test_put_of_an_invalid_document_lists_every_problem_and_writes_nothing(imported, pipeline):
    bad = shorter_shipping(imported, 300)
    bad["endpoints"][0]["calls"][0]["service"] = "crt"
    bad["services"]["tax"]["base_url"] = "not a url"
    response = pipeline.put(API + "config", bad, format="json", HTTP_IF_MATCH='"1"')
    assert response.status_code == 400
    problems = response.json()["problems"]
    locations = [p["location"] for p in problems]
    assert "services.tax.base_url" in locations and "endpoints[0].calls[0].service" in locations
    assert response.json()["error"]["code"] == "INVALID_CONFIG"
    assert models.ConfigRevision.objects.count() == 1
    assert models.Call.objects.get(call_id="shipping").timeout_ms == 500


def test_put_of_json_that_is_not_a_document_is_400_not_500(imported, pipeline):
    for body in ([1, 2], "text", {"version": 1}):
        response = pipeline.put(API + "config", body, format="json", HTTP_IF_MATCH='"1"')
        assert response.status_code == 400 and response.json()["problems"]
    broken = pipeline.put(API + "config", "{not json", content_type="application/json", HTTP_IF_MATCH='"1"')
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "BAD_REQUEST"


def test_diff_says_what_would_change(imported, pipeline):
    same = pipeline.post(API + "config/diff", imported, format="json").json()
    assert same == {"changed": False, "diff": ""}
    changed = pipeline.post(API + "config/diff", shorter_shipping(imported, 300), format="json").json()
    assert changed["changed"] is True
    assert "-        timeout_ms: 500\n+        timeout_ms: 300\n" in changed["diff"]
    assert changed["diff"].startswith("--- version 1\n+++ proposed\n")


def test_versions_list_detail_and_rollback(imported, pipeline):
    pipeline.put(API + "config", shorter_shipping(imported, 300), format="json", HTTP_IF_MATCH='"1"')
    listing = pipeline.get(API + "versions").json()
    assert [v["number"] for v in listing["results"]] == [2, 1] and listing["count"] == 2
    detail = pipeline.get(API + "versions/2").json()
    assert detail["source"] == "api" and "+" in detail["diff"] and "timeout_ms: 300" in detail["diff"]
    assert detail["document"]["endpoints"][0]["calls"][3]["timeout_ms"] == 300
    rolled = pipeline.post(API + "versions/1/rollback", {"comment": "too tight"}, format="json")
    assert rolled.status_code == 201 and rolled.json() == {"version": 3}
    assert models.Call.objects.get(call_id="shipping").timeout_ms == 500
    third = models.ConfigRevision.objects.get(number=3)
    assert (third.source, third.who, third.comment) == ("rollback", "pipeline", "too tight")
    assert third.document == models.ConfigRevision.objects.get(number=1).document
    assert third.summary == "rollback to version 1: endpoint checkout-summary: calls.shipping.timeout_ms 300 → 500"
    assert pipeline.get(API + "versions/99").status_code == 404
    assert pipeline.post(API + "versions/99/rollback").status_code == 404


def test_rollback_to_a_version_that_cannot_serve_is_refused_with_the_problems(imported, pipeline, monkeypatch):
    pipeline.put(API + "config", shorter_shipping(imported, 300), format="json", HTTP_IF_MATCH='"1"')
    monkeypatch.delenv("GATEWAY_JWT_SECRET")
    response = pipeline.post(API + "versions/1/rollback")
    assert response.status_code == 400
    assert response.json()["problems"] == [
        {"location": "layer.auth.jwt.secret_env", "message": "environment variable GATEWAY_JWT_SECRET is not set"}
    ]
    assert models.ConfigRevision.objects.count() == 2
    assert models.Call.objects.get(call_id="shipping").timeout_ms == 300


def test_staff_session_works_and_a_non_staff_session_does_not(imported, client):
    staff = user_with("ops", CONFIG_READ_PERMS)
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    assert client.get(API + "config").status_code == 200
    staff.is_staff = False
    staff.save()
    assert client.get(API + "config").status_code == 401


def test_dependents_of_a_service(imported):
    """Section 6's blast radius: the status a failure gives and the response fields each call
    fills, besides the call, its order and fallback (the console's selector, one source)."""
    viewer = client_for(user_with("viewer", ("registry.view_service",)))
    response = viewer.get(API + "services/shipping/dependents")
    assert response.status_code == 200
    assert response.json() == {
        "service": "shipping",
        "dependents": [
            {
                "endpoint": "checkout-summary",
                "method": "POST",
                "path": "/v1/checkout/summary",
                "call": "shipping",
                "order": "2 (parallel)",
                "required": False,
                "failure": "200 with partialData (the call's fallback in place)",
                "fallback": 'Return {"options": []}',
                "fallbackValue": {"options": []},
                "responseFields": ["shipping"],
            }
        ],
    }
    cart = viewer.get(API + "services/cart/dependents").json()["dependents"]
    assert [(d["endpoint"], d["call"], d["order"], d["required"], d["fallback"]) for d in cart] == [
        ("checkout-summary", "cart", "1", True, "Fail request"),
        ("dashboard", "profile_cart", "1 (parallel)", True, "Fail request"),
    ]
    assert cart[0]["failure"].startswith("502 DOWNSTREAM_FAILURE")
    assert cart[0]["responseFields"]


def test_dependents_of_an_unknown_service_is_404_in_the_envelope(imported):
    viewer = client_for(user_with("viewer", ("registry.view_service",)))
    response = viewer.get(API + "services/nope/dependents")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert "nope" in response.json()["error"]["message"]


def test_writes_are_throttled_per_user(imported, pipeline, settings):
    from django.core.cache import cache

    cache.clear()
    settings.GATEWAY_ADMIN_API = {"READ_RATE": "1000/min", "WRITE_RATE": "2/min"}
    statuses = [pipeline.post(API + "config/diff", imported, format="json").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    throttled = pipeline.post(API + "config/diff", imported, format="json")
    assert throttled.json()["error"]["code"] == "RATE_LIMITED" and int(throttled["Retry-After"]) > 0
    assert pipeline.get(API + "config").status_code == 200  # reads have their own budget
    cache.clear()


def test_schema_is_openapi_3_of_this_api(imported, pipeline):
    response = pipeline.get(API + "schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/admin/v1/config", "/api/admin/v1/versions/{number}/rollback"} <= set(schema["paths"])
    assert APIClient().get(API + "schema").status_code == 401
