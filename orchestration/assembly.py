"""Assembly: the endpoint's ``response`` template rendered over the context.

The context holds only JSON (the request, verified claims, parsed downstream
bodies with NaN/Infinity rejected, fallbacks from the configuration), and
JMESPath builds JSON from JSON, so the result is JSON-serialisable by
construction. A partial response carries ``partialData`` and
``failedServices`` at its top level; a response template that is not an
object is wrapped as ``{"data": ...}`` in that case so the markers have a place.
A response where a kept result stood in for a failed optional call
(``stale_if_error_s``) carries ``staleServices`` the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestration.plan import Endpoint


def assemble(
    endpoint: Endpoint,
    context: Mapping[str, Any],
    *,
    failed_services: Sequence[str] = (),
    stale_services: Sequence[str] = (),
) -> Any:
    return mark(endpoint.response.render(context), failed_services=failed_services, stale_services=stale_services)


def mark(body: Any, *, failed_services: Sequence[str] = (), stale_services: Sequence[str] = ()) -> Any:
    """The rendered response with the gateway's markers (partialData, failedServices, staleServices)."""
    if not failed_services and not stale_services:
        return body
    marked: dict[str, Any] = dict(body) if isinstance(body, dict) else {"data": body}
    if failed_services:
        marked["partialData"] = True
        marked["failedServices"] = list(failed_services)
    if stale_services:  # a kept result stood in for a failed optional call (resilience.stale)
        marked["staleServices"] = list(stale_services)
    return marked
