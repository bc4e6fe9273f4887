"""The audit log is read-only in the admin: entries are written by console actions only."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from console.models import BreakerAuditEntry


@admin.register(BreakerAuditEntry)
class BreakerAuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "username", "service", "action", "reason", "state_before", "state_after")
    list_filter = ("action", "service")
    search_fields = ("service", "username", "reason")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
