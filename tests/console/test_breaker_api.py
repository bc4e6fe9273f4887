"""The admin API's breaker endpoints: state, and actions audited exactly like the console's."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from console.models import BreakerAuditEntry

pytestmark = pytest.mark.django_db
URL = "/api/admin/v1/services/shipping/breaker"


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_breaker_state_and_an_audited_force_open(served, make_user) -> None:
    user = make_user("oncall", staff=False, operate=True)
    user.user_permissions.add(Permission.objects.get(codename="view_service"))
    client = token_client(user)
    assert client.get(URL).json()["state"] == "closed"
    response = client.post(URL, {"action": "force_open", "reason": "INC-7 shipping is down"}, format="json")
    assert response.status_code == 200 and response.json()["state"] == "open"
    entry = BreakerAuditEntry.objects.get()
    assert (entry.username, entry.action, entry.reason, entry.state_before, entry.state_after, entry.outcome) == (
        "oncall",
        "force_open",
        "INC-7 shipping is down",
        "closed",
        "open",
        "done",
    )
    assert client.get(URL).json()["state"] == "open"
    assert client.get("/api/admin/v1/services/nope/breaker").status_code == 404


def test_breaker_actions_need_the_permission_and_a_reason(served, make_user) -> None:
    viewer = make_user("viewer", staff=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_service"))
    client = token_client(viewer)
    assert client.get(URL).status_code == 200
    denied = client.post(URL, {"action": "reset", "reason": "x"}, format="json")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
    operator = token_client(make_user("operator", staff=False, operate=True))
    blank = operator.post(URL, {"action": "reset", "reason": "  "}, format="json")
    assert blank.status_code == 400 and blank.json()["error"]["code"] == "BAD_REQUEST"
    unknown = operator.post(URL, {"action": "explode", "reason": "x"}, format="json")
    assert unknown.status_code == 400
    assert APIClient().post(URL, {"action": "reset", "reason": "x"}, format="json").status_code == 401
    assert BreakerAuditEntry.objects.count() == 0
