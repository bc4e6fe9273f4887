"""The audit log is read-only in the admin: entries are written by console actions only."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from console.models import BreakerAuditEntry


@admin.register(BreakerAuditEntry)
class BreakerAuditEntryAdmin(admin.ModelAdmin[BreakerAuditEntry]):
    list_display = ("created_at", "username", "service", "action", "reason", "state_before", "state_after", "outcome")
    list_filter = ("action", "outcome", "service")
    search_fields = ("service", "username", "reason")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _add_breaker_column_to_service_admin() -> None:
    """The registry's service list shows breaker state too. The console adds the
    column (console depends on registry, never the other way round)."""
    from console.admin_mixins import BreakerStateColumnMixin
    from registry.admin.service_admin import ServiceAdmin
    from registry.models import Service

    class ServiceWithBreakerAdmin(BreakerStateColumnMixin, ServiceAdmin):
        list_display = [*ServiceAdmin.list_display, "breaker_state"]

    admin.site.unregister(Service)
    admin.site.register(Service, ServiceWithBreakerAdmin)


_add_breaker_column_to_service_admin()
