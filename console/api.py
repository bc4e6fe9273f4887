"""Breaker state and actions in the admin API (contract section 5): the same
``breaker_action_perform`` as the console's buttons, so the audit is the same."""

from __future__ import annotations

import logging

from django.db import DatabaseError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from console import services
from registry.api.base import SERVICE_READ_PERMS, AdminApiView, error_response, not_found
from registry.api.serializers import BreakerActionSerializer

logger = logging.getLogger(__name__)
OPERATE_PERMS = ("console.operate_breakers",)


def _state(name: str) -> dict[str, object] | None:
    from gateway_project.observability import breaker_of, current_runtime

    runtime = current_runtime()
    service = runtime.plan.services.get(name)
    if service is None:
        return None
    snap = breaker_of(runtime, service).snapshot()
    return {
        "service": name,
        "state": str(snap.state),
        "failuresInWindow": snap.failures_in_window,
        "secondsUntilHalfOpen": snap.seconds_until_half_open,
        "probesIssued": snap.probes_issued,
        "probesSucceeded": snap.probes_succeeded,
        "forced": snap.forced,
    }


class BreakerView(AdminApiView):
    required_perms = {"GET": SERVICE_READ_PERMS, "HEAD": SERVICE_READ_PERMS, "POST": OPERATE_PERMS}

    @extend_schema(responses={200: dict, 404: OpenApiResponse()})
    def get(self, request: Request, name: str) -> Response:
        state = _state(name)
        return not_found(request, f"No service named {name!r} is served") if state is None else Response(state)

    @extend_schema(request=BreakerActionSerializer, responses={200: dict, 400: OpenApiResponse()})
    def post(self, request: Request, name: str) -> Response:
        serializer = BreakerActionSerializer(data=request.data)
        if not serializer.is_valid():
            message = "; ".join(f"{field}: {' '.join(map(str, errs))}" for field, errs in serializer.errors.items())
            return error_response(request, 400, message)
        try:
            entry = services.breaker_action_perform(user=request.user, service=name, **serializer.validated_data)
        except services.ReasonRequired as missing:
            return error_response(request, 400, str(missing))
        except services.UnknownService:
            return not_found(request, f"No service named {name!r} is served")
        except DatabaseError:
            logger.exception("admin API: the audit entry for %s could not be written", name)
            return error_response(request, 503, "The audit log could not be written; the breaker was not changed")
        return Response({**(_state(name) or {}), "audit": {"id": entry.pk, "outcome": entry.outcome}})
