"""Blast radius: what a service's failure does to the endpoints that call it (contract section 6).

Read from a compiled Plan, never hand-kept: the console's service page, the
breaker board and the admin API's ``services/NAME/dependents`` all use
``service_dependents``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestration.plan import Plan
from registry.spec import fallback_words, response_fields, stage_order

REQUIRED_FAILURE = "502 DOWNSTREAM_FAILURE (504 if it timed out; its 401, 403, 429 or other 4xx passed on)"
OPTIONAL_FAILURE = "200 with partialData (the call's fallback in place)"


@dataclass(frozen=True, slots=True)
class Dependent:
    """One call of one endpoint to the service."""

    endpoint: str
    method: str
    path: str  # the client's path, base path included
    call_id: str
    required: bool
    failure_status: str
    fallback: str
    response_fields: tuple[str, ...]  # the response fields this call's result fills
    order: str = ""  # the call sequence's Order, e.g. ``2 (parallel)``
    fallback_value: Any = None  # the JSON value an optional call's failure leaves (None when required)

    def as_dict(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "method": self.method,
            "path": self.path,
            "call": self.call_id,
            "order": self.order,
            "required": self.required,
            "failure": self.failure_status,
            "fallback": self.fallback,
            "fallbackValue": self.fallback_value,
            "responseFields": list(self.response_fields),
        }


def service_dependents(plan: Plan, service: str) -> tuple[Dependent, ...]:
    """Every call to ``service``, in the plan's endpoint order."""
    base = plan.layer.base_path.rstrip("/")
    found: list[Dependent] = []
    for endpoint in plan.endpoints:
        fields = response_fields(endpoint)
        for call in endpoint.calls:
            if call.service != service:
                continue
            found.append(
                Dependent(
                    endpoint=endpoint.name,
                    method=endpoint.method,
                    path=base + endpoint.path,
                    call_id=call.id,
                    required=call.required,
                    failure_status=REQUIRED_FAILURE if call.required else OPTIONAL_FAILURE,
                    fallback=fallback_words(call),
                    response_fields=tuple(f.path for f in fields if call.id in f.calls),
                    order=stage_order(endpoint, call),
                    fallback_value=None if call.required else call.fallback,
                )
            )
    return tuple(found)


def impact_sentence(plan: Plan, service: str) -> str:
    """``Fails checkout-summary; degrades dashboard`` — what an open breaker does right now."""
    dependents = service_dependents(plan, service)
    failing = list(dict.fromkeys(d.endpoint for d in dependents if d.required))
    degrading = [
        name for name in dict.fromkeys(d.endpoint for d in dependents if not d.required) if name not in failing
    ]
    parts = []
    if failing:
        parts.append("Fails " + ", ".join(failing))
    if degrading:
        parts.append(("degrades " if parts else "Degrades ") + ", ".join(degrading))
    return "; ".join(parts) or "No endpoint calls it"
