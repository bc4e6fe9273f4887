"""Client API keys: the plaintext is shown once, on creation; the list shows prefixes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from registry import models
from registry.services import api_key_create, api_key_revoke


@admin.register(models.ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[models.ApiKey]):
    list_display = ["name", "prefix", "subject", "created_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "subject"]
    readonly_fields = ["prefix", "created_at", "revoked_at"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["name", "subject"] if obj is None else ["name", "subject", *self.readonly_fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else ["subject", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: models.ApiKey, form: Any, change: bool) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        key, plaintext = api_key_create(name=obj.name, subject=obj.subject)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = key.pk, key.prefix, key.key_hash, key.created_at
        messages.warning(request, f"Copy this API key now; it is shown only once and cannot be recovered: {plaintext}")

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[models.ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(api_key=key)
        self.message_user(request, f"Revoked {len(keys)} API key(s).", messages.SUCCESS)
