"""Reads for change management: a version's diff, the current document's diff against
a proposed one, and the endpoints that depend on a service (the blast radius)."""

from __future__ import annotations

from typing import Any, cast

from registry import blast_radius, models
from registry.compiler import compile_plan
from registry.config.changes import canonical, unified_diff
from registry.selectors import config_document_get, config_snapshot


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
    """Section 6's blast radius of service ``name`` in the configuration as stored (None: no
    such service), from the same selector the console's service page uses
    (``registry.blast_radius``): required calls fail their endpoint with the status a failure
    gives; optional ones degrade it to their fallback; each lists the response fields it fills."""
    with config_snapshot():  # the plan of one committed state
        plan = compile_plan()
    if name not in plan.services:
        return None
    return [dependent.as_dict() for dependent in blast_radius.service_dependents(plan, name)]
