"""Assembly: the endpoint's ``response`` template rendered over the context.

The context holds only JSON (the request, verified claims, parsed downstream
bodies with NaN/Infinity rejected, fallbacks from the configuration), and
JMESPath builds JSON from JSON, so the result is JSON-serialisable by
construction. A partial response carries ``partialData`` and
``failedServices`` at its top level; a response template that is not an
object is wrapped as ``{"data": ...}`` in that case so the markers have a place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from orchestration.plan import Endpoint


def assemble(endpoint: Endpoint, context: Mapping[str, Any], *, failed_services: Sequence[str] = ()) -> Any:
    body = endpoint.response.render(context)
    if not failed_services:
        return body
    marked: dict[str, Any] = dict(body) if isinstance(body, dict) else {"data": body}
    marked["partialData"] = True
    marked["failedServices"] = list(failed_services)
    return marked
