"""A breaker action and its audit entry are one step: no change without its entry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection

from console.models import BreakerAuditEntry

pytestmark = pytest.mark.django_db(transaction=True)

_TABLE = BreakerAuditEntry._meta.db_table
_REFUSE = {
    "postgresql": [
        "CREATE FUNCTION audit_refused() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$"
        " LANGUAGE plpgsql",
        f"CREATE TRIGGER audit_refused BEFORE INSERT ON {_TABLE} FOR EACH ROW EXECUTE FUNCTION audit_refused()",
    ],
    "sqlite": [
        f"CREATE TRIGGER audit_refused BEFORE INSERT ON {_TABLE}"
        " BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END"
    ],
}
_ALLOW = {
    "postgresql": [f"DROP TRIGGER IF EXISTS audit_refused ON {_TABLE}", "DROP FUNCTION IF EXISTS audit_refused()"],
    "sqlite": ["DROP TRIGGER IF EXISTS audit_refused"],
}


@pytest.fixture
def audit_log_refusing() -> Iterator[None]:
    """The database itself refuses new audit entries (a real failing INSERT, not a mock)."""
    with connection.cursor() as cursor:
        for statement in _REFUSE[connection.vendor]:
            cursor.execute(statement)
    yield
    with connection.cursor() as cursor:
        for statement in _ALLOW[connection.vendor]:
            cursor.execute(statement)


def test_when_the_audit_entry_cannot_be_written_the_breaker_is_not_changed(
    client, served, make_user, audit_log_refusing
) -> None:
    client.force_login(make_user("operator", operate=True))

    response = client.post("/console/services/cart/actions", {"action": "force_open", "reason": "drill"}, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain == [("/console/services/cart/", 302)]
    assert "The audit log could not be written, so the breaker was not changed" in response.content.decode()
    assert str(served.pool.breaker("cart").snapshot().state) == "closed"
    assert BreakerAuditEntry.objects.count() == 0


def test_a_done_action_leaves_one_entry_with_its_outcome(client, served, make_user) -> None:
    client.force_login(make_user("operator", operate=True))
    served.pool.breaker("cart").force_open()

    client.post("/console/services/cart/actions", {"action": "reset", "reason": "fixed upstream"})

    assert str(served.pool.breaker("cart").snapshot().state) == "closed"
    entry = BreakerAuditEntry.objects.get()
    assert (entry.action, entry.state_before, entry.state_after, entry.outcome) == ("reset", "open", "closed", "done")
