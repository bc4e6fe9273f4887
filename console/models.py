"""The audit log of breaker actions taken from the console."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from console.choices import ActionOutcome, BreakerAction


class BreakerAuditEntry(models.Model):
    """Who did what to which breaker, when and why. The username is copied so the
    entry outlives the account."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    service = models.CharField(max_length=100, db_index=True)
    action = models.CharField(max_length=20, choices=BreakerAction.choices)
    reason = models.TextField()
    state_before = models.CharField(max_length=20, blank=True)
    state_after = models.CharField(max_length=20, blank=True)
    outcome = models.CharField(max_length=20, choices=ActionOutcome.choices, default=ActionOutcome.DONE)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "breaker audit entry"
        verbose_name_plural = "breaker audit entries"
        permissions = [
            ("operate_breakers", "Can reset or force circuit breakers"),
            ("explain_requests", "Can run explain requests through the engine from the console"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.service}"
