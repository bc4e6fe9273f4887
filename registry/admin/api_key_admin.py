"""Client API keys: the plaintext is shown once, on creation; the list shows prefixes.

The plaintext goes into the body of the page that answers the add form, and nowhere
else: not a message (the messages framework keeps them in a cookie or the session,
where the key would outlive the page), not a redirect target, not a cache."""

from __future__ import annotations

import weakref
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from registry import models
from registry.admin.versioning import VersionLockMixin, admin_author
from registry.services import api_key_create, api_key_delete, api_key_revoke, config_version_bump

# The plaintext of a key created by a request, from ``save_model`` to ``response_add``
# of that same request; gone with the request.
_created: weakref.WeakKeyDictionary[HttpRequest, str] = weakref.WeakKeyDictionary()


@admin.register(models.ApiKey)
class ApiKeyAdmin(VersionLockMixin, admin.ModelAdmin[models.ApiKey]):
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
            obj.save(update_fields=["name"])  # inside the admin's transaction, under the version lock
            config_version_bump(author=admin_author(request), summary=f"api key {obj.prefix}… renamed {obj.name!r}")
            return
        key, plaintext = api_key_create(name=obj.name, subject=obj.subject, author=admin_author(request))
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = key.pk, key.prefix, key.key_hash, key.created_at
        _created[request] = plaintext

    def response_add(
        self, request: HttpRequest, obj: models.ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The key's one showing: this page, never stored by the browser or anything else."""
        plaintext = _created.pop(request, None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Copy the new API key",
            "api_key": obj,
            "plaintext": plaintext,
        }
        response = TemplateResponse(request, "admin/registry/apikey/created.html", context)
        add_never_cache_headers(response)
        return response

    def delete_model(self, request: HttpRequest, obj: models.ApiKey) -> None:
        api_key_delete(keys=models.ApiKey.objects.filter(pk=obj.pk), author=admin_author(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[models.ApiKey]) -> None:
        api_key_delete(keys=queryset, author=admin_author(request))  # the "delete selected" action

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[models.ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(api_key=key, author=admin_author(request))
        self.message_user(request, f"Revoked {len(keys)} API key(s).", messages.SUCCESS)
