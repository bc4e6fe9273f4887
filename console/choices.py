"""Breaker states and actions as people see them: words and a colour each."""

from __future__ import annotations

from django.db import models


class BreakerAction(models.TextChoices):
    RESET = "reset", "Reset (close, clear failures)"
    FORCE_OPEN = "force_open", "Force open (skip all calls)"
    FORCE_CLOSED = "force_closed", "Force closed (never trip)"


class ActionOutcome(models.TextChoices):
    """An audit entry is written before its action runs (console/services.py), so it says
    whether the action then happened: pending until the breaker has been changed."""

    PENDING = "pending", "Pending (the action may not have run)"
    DONE = "done", "Done"
    FAILED = "failed", "Failed (the breaker was not changed)"


# state -> (label, CSS colour class); red for "calls are skipped", amber for "watch it".
STATE_BADGES: dict[str, tuple[str, str]] = {
    "closed": ("Closed", "ok"),
    "half_open": ("Half-open", "warn"),
    "open": ("Open", "bad"),
}
STATUS_BADGES: dict[str, tuple[str, str]] = {
    "ok": ("OK", "ok"),
    "degraded": ("Degraded", "warn"),
    "down": ("Down", "bad"),
}
