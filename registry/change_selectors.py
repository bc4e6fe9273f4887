"""Reads for change management: a version's diff, the current document's diff against
a proposed one, and the endpoints that depend on a service."""

from __future__ import annotations

from typing import Any, cast

from registry import models
from registry.config.changes import canonical, unified_diff
from registry.selectors import config_document_get


def version_diff(revision: models.ConfigRevision) -> str:
    """The unified diff from the version before ``revision`` (none: from nothing)."""
    previous = (
        models.ConfigRevision.objects.filter(number__lt=revision.number)
        .order_by("-number")
        .values_list("number", "document")
        .first()
    )
    before: Any = previous[1] if previous else None
    label = f"version {previous[0]}" if previous else "nothing"
    return unified_diff(before, cast(Any, revision.document), labels=(label, f"version {revision.number}"))


def config_diff(document: Any, *, current_version: int, label: str = "proposed") -> str:
    """What replacing the configuration with ``document`` would change ('' if nothing)."""
    return unified_diff(config_document_get(), canonical(document), labels=(f"version {current_version}", label))


def service_dependents(*, name: str) -> list[dict[str, Any]] | None:
    """Every endpoint call to service ``name`` (None: no such service). Required calls fail
    their endpoint when they fail; optional ones degrade it to their fallback."""
    if not models.Service.objects.filter(name=name).exists():
        return None
    calls = models.Call.objects.filter(service__name=name).select_related("endpoint")
    return [
        {
            "endpoint": call.endpoint.name,
            "method": call.endpoint.method,
            "path": call.endpoint.path,
            "call": call.call_id,
            "stage": call.stage,
            "required": call.required,
            "fallback": None if call.required else call.fallback,
        }
        for call in calls.order_by("endpoint__position", "endpoint__name", "stage", "position", "id")
    ]
