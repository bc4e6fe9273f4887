"""Every admin change to the registry bumps the configuration version, explicitly."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from registry.services import config_version_bump


class ConfigVersionBumpMixin:
    """``save_related`` runs after the object and its inlines are saved: bump once there."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # type: ignore[misc]
        config_version_bump()

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        super().delete_model(request, obj)  # type: ignore[misc]
        config_version_bump()

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        # The bulk action, unlike the change and delete pages, runs outside a transaction.
        with transaction.atomic():
            super().delete_queryset(request, queryset)  # type: ignore[misc]
            config_version_bump()
