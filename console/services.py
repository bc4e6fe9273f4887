"""Console actions on breakers: write the audit entry, then act, then record the outcome.

The breaker lives in Redis (or the process), the audit log in the database: no one
transaction covers both. So the entry is committed *before* the breaker is touched
and says ``pending`` until the action has run. If the entry cannot be written the
breaker is left as it was; if the action fails, the entry says so. There is never
a breaker change without its audit entry.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from console.choices import ActionOutcome, BreakerAction
from console.models import BreakerAuditEntry

logger = logging.getLogger(__name__)


class UnknownService(LookupError):
    """The service is not in the served configuration."""


class ReasonRequired(ValueError):
    """Every action needs a reason: the audit log is for the next person on call."""


def breaker_action_perform(*, user: Any, service: str, action: str, reason: str) -> BreakerAuditEntry:
    """Raises ``DatabaseError`` (breaker untouched) when the audit entry cannot be written.

    Call it outside a transaction: the entry must be committed before the breaker changes."""
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
    with transaction.atomic():
        entry = BreakerAuditEntry.objects.create(
            user=user,
            username=user.get_username(),
            service=service,
            action=chosen,
            reason=reason[:2000],
            state_before=before,
            outcome=ActionOutcome.PENDING,
        )
    perform = {
        BreakerAction.RESET: breaker.reset,
        BreakerAction.FORCE_OPEN: breaker.force_open,
        BreakerAction.FORCE_CLOSED: breaker.force_closed,
    }[chosen]
    try:
        perform()
    except Exception:
        _outcome_record(entry, ActionOutcome.FAILED, state_after=str(breaker.snapshot().state))
        raise
    _outcome_record(entry, ActionOutcome.DONE, state_after=str(breaker.snapshot().state))
    return entry


def _outcome_record(entry: BreakerAuditEntry, outcome: ActionOutcome, *, state_after: str) -> None:
    """Best effort: the entry already says who did what and why; an entry left
    ``pending`` reads "may have happened", which is true."""
    entry.outcome, entry.state_after = outcome, state_after
    try:
        entry.save(update_fields=["outcome", "state_after"])
    except Exception:
        logger.exception("breaker audit entry %s: could not record the outcome %s", entry.pk, outcome)
