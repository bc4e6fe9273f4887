"""Console actions on breakers: act on the shared breaker, then write the audit entry."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from console.choices import BreakerAction
from console.models import BreakerAuditEntry


class UnknownService(LookupError):
    """The service is not in the served configuration."""


class ReasonRequired(ValueError):
    """Every action needs a reason: the audit log is for the next person on call."""


@transaction.atomic
def breaker_action_perform(*, user: Any, service: str, action: str, reason: str) -> BreakerAuditEntry:
    from gateway_project.observability import breaker_of, current_runtime

    reason = reason.strip()
    if not reason:
        raise ReasonRequired("Say why: the reason is recorded in the audit log")
    chosen = BreakerAction(action)
    runtime = current_runtime()
    plan_service = runtime.plan.services.get(service)
    if plan_service is None:
        raise UnknownService(service)
    breaker = breaker_of(runtime, plan_service)
    before = str(breaker.snapshot().state)
    {
        BreakerAction.RESET: breaker.reset,
        BreakerAction.FORCE_OPEN: breaker.force_open,
        BreakerAction.FORCE_CLOSED: breaker.force_closed,
    }[chosen]()
    return BreakerAuditEntry.objects.create(
        user=user,
        username=user.get_username(),
        service=service,
        action=chosen,
        reason=reason[:2000],
        state_before=before,
        state_after=str(breaker.snapshot().state),
    )
