"""Configuration versions in the admin: a read-only list (who, when, source, summary),
each version's page with its diff against the one before, and "roll back to this
version" behind a confirmation page and ``registry.rollback_configversion``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from registry import models
from registry.change_selectors import version_diff
from registry.config.changes import unified_diff
from registry.config.problems import ConfigInvalid
from registry.selectors import config_document_get
from registry.services import config_rollback
from registry.versioning import Author

ROLLBACK_PERMISSION = "registry.rollback_configversion"


def diff_rows(diff: str) -> list[tuple[str, str]]:
    """(css class, line) per line of a unified diff, for a readable coloured page."""
    kinds = {"+": "added", "-": "removed", "@": "hunk"}
    return [
        ("file" if line.startswith(("+++", "---")) else kinds.get(line[:1], ""), line) for line in diff.splitlines()
    ]


@admin.register(models.ConfigRevision)
class ConfigRevisionAdmin(admin.ModelAdmin[models.ConfigRevision]):
    list_display = ["number", "created_at", "who", "source", "summary", "comment"]
    list_display_links = ["number"]
    list_filter = ["source", "who"]
    search_fields = ["summary", "comment", "who"]
    change_form_template = "admin/registry/configrevision/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[models.ConfigRevision]:
        """The list never loads the documents (they are the whole configuration each)."""
        queryset = super().get_queryset(request)
        match = request.resolver_match
        return queryset if match and (match.url_name or "").endswith("_change") else queryset.defer("document")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.rollback_view)
        return [path("<int:number>/rollback/", view, name="registry_configrevision_rollback"), *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        revision = self.get_object(request, object_id)
        if revision is None or not self.has_view_permission(request, revision):
            raise Http404("No such version")
        extra = {
            **(extra_context or {}),
            "diff_rows": diff_rows(version_diff(revision)),
            "can_rollback": request.user.has_perm(ROLLBACK_PERMISSION),
            "rollback_url": reverse("admin:registry_configrevision_rollback", args=[revision.number]),
        }
        return super().change_view(request, object_id, form_url, extra)

    def rollback_view(self, request: HttpRequest, number: int) -> HttpResponse:
        if not request.user.has_perm(ROLLBACK_PERMISSION):
            raise PermissionDenied
        revision = models.ConfigRevision.objects.filter(number=number).first()
        if revision is None:
            raise Http404("No such version")
        problems: list[Any] = []
        if request.method == "POST":
            comment = request.POST.get("comment", "")
            author = Author(source=models.VersionSource.ROLLBACK, user=request.user, comment=comment)
            try:
                new = config_rollback(number=number, author=author)
            except ConfigInvalid as exc:
                problems = exc.problems
            else:
                done = f"Rolled back to version {number}: now version {new.number}."
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:registry_configrevision_change", args=[new.pk]))
        diff = unified_diff(config_document_get(), revision.document, labels=("now", f"version {number}"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Roll back to version {number}?",
            "revision": revision,
            "diff_rows": diff_rows(diff),
            "problems": problems,
        }
        return TemplateResponse(request, "admin/registry/configrevision/rollback.html", context)
