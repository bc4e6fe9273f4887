"""Every admin change to the registry records a configuration version, explicitly.

A POST to a change, add, delete or list page takes the version lock first (inside the
admin's own transaction), so an admin save and an import or API change that runs at
the same moment commit one after the other instead of deadlocking.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from registry.models import VersionSource
from registry.services import config_version_bump
from registry.versioning import Author, version_lock


def admin_author(request: HttpRequest) -> Author:
    return Author(source=VersionSource.ADMIN, user=request.user)


class VersionLockMixin:
    """Serialise admin writes with every other change (``registry.versioning``)."""

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc,no-any-return]
        with transaction.atomic():
            version_lock()
            return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc,no-any-return]

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return super().delete_view(request, *args, **kwargs)  # type: ignore[misc,no-any-return]
        with transaction.atomic():
            version_lock()
            return super().delete_view(request, *args, **kwargs)  # type: ignore[misc,no-any-return]


class ConfigVersionBumpMixin(VersionLockMixin):
    """``save_related`` runs after the object and its inlines are saved: record once there."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        config_version_bump(author=admin_author(request))

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        super().delete_model(request, obj)  # type: ignore[misc]
        config_version_bump(author=admin_author(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # The bulk action, unlike the change and delete pages, runs outside a transaction.
        with transaction.atomic():
            version_lock()
            super().delete_queryset(request, queryset)  # type: ignore[misc]
            config_version_bump(author=admin_author(request))
