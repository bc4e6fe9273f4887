"""Who may see and act on breakers, and what an action leaves behind."""

from __future__ import annotations

import pytest

from console.models import BreakerAuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


def test_anonymous_is_sent_to_login(client, served) -> None:
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert client.post("/console/services/shipping/actions", {"action": "reset", "reason": "x"}).status_code == 302


def test_staff_without_permission_sees_the_board_but_cannot_act(client, served, make_user) -> None:
    served.pool.breaker("shipping").force_open()
    client.force_login(make_user("viewer"))

    board = client.get("/console/")
    page = client.get("/console/services/shipping/")
    action = client.post("/console/services/shipping/actions", {"action": "reset", "reason": "try"})

    assert board.status_code == 200
    assert b"Forced open: calls to shipping are skipped until someone resets the breaker" in board.content
    assert page.status_code == 200 and b'id="breaker-action"' not in page.content
    assert action.status_code == 403
    assert str(served.pool.breaker("shipping").snapshot().state) == "open"
    assert BreakerAuditEntry.objects.count() == 0


def test_force_open_with_reason_is_audited(client, served, make_user) -> None:
    client.force_login(make_user("operator", operate=True))

    response = client.post("/console/services/shipping/actions", {"action": "force_open", "reason": " drill "})

    assert response.status_code == 302 and response["Location"] == "/console/services/shipping/"
    assert str(served.pool.breaker("shipping").snapshot().state) == "open"
    entry = BreakerAuditEntry.objects.get()
    expected = ("operator", "shipping", "force_open", "drill")
    assert (entry.username, entry.service, entry.action, entry.reason) == expected
    assert (entry.state_before, entry.state_after) == ("closed", "open")
    page = client.get("/console/services/shipping/")
    assert "operator: Force open (skip all calls) — “drill”" in page.content.decode()


def test_an_action_without_reason_changes_nothing(client, served, make_user) -> None:
    client.force_login(make_user("operator", operate=True))

    response = client.post("/console/services/shipping/actions", {"action": "force_open", "reason": "  "}, follow=True)

    assert b"Say why" in response.content
    assert str(served.pool.breaker("shipping").snapshot().state) == "closed"
    assert BreakerAuditEntry.objects.count() == 0


def test_unknown_service_is_404(client, served, make_user) -> None:
    client.force_login(make_user("operator", operate=True))
    assert client.get("/console/services/nope/").status_code == 404
    assert client.post("/console/services/nope/actions", {"action": "reset", "reason": "x"}).status_code == 404
