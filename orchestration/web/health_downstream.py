"""/health/downstream: the gateway's view of every downstream service.

Anonymous callers (load balancers, status pages) get the overall status only;
staff sessions and callers presenting ``X-Health-Token`` equal to
``GATEWAY_HEALTH_TOKEN`` get the per-service details. Nothing here can leak a
secret: the details name breaker and latency numbers, never URLs or auth.
Status 503 only when every service is down, so a partial outage never makes
an orchestrator pull a gateway that still serves fallbacks.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from orchestration.observability import service_health

logger = logging.getLogger(__name__)


def may_see_details(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    expected = settings.GATEWAY["HEALTH_TOKEN"]
    offered = request.headers.get("X-Health-Token", "")
    return bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())


def health_downstream(request: HttpRequest) -> JsonResponse:
    from gateway_project.observability import downstream_view

    try:
        view = downstream_view()
    except Exception:  # the plan could not load: say so without a traceback
        logger.exception("health/downstream: could not read the downstream state")
        return JsonResponse({"status": "down"}, status=503)
    body: dict[str, object] = {"status": view.status}
    if may_see_details(request):
        body["services"] = {h.name: service_health.details(h, now=view.at) for h in view.services}
    response = JsonResponse(body, status=503 if view.status == "down" else 200)
    response["Cache-Control"] = "no-store"
    return response
