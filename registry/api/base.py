"""What every admin API view shares: who may call (DRF token or a staff session), which
Django model permissions each method needs, throttles, and errors as the envelope.

401 when no credentials came (``WWW-Authenticate: Token``), 403 when they came without
the permission; every error is the contract's envelope with the request's id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

# What replacing the whole configuration (PUT config) touches: the layer, services, endpoints.
CONFIG_WRITE_PERMS = (
    *(f"registry.{action}_{model}" for model in ("service", "endpoint") for action in ("add", "change", "delete")),
    "registry.change_layer",
)
CONFIG_READ_PERMS = ("registry.view_configrevision",)
ROLLBACK_PERMS = ("registry.rollback_configversion",)
SERVICE_READ_PERMS = ("registry.view_service",)

_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    412: "PRECONDITION_FAILED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    428: "PRECONDITION_REQUIRED",
    429: "RATE_LIMITED",
}


def error_body(request: Any, status_code: int, message: str, code: str | None = None) -> dict[str, Any]:
    """The contract's envelope (section 2) for an admin API error."""
    request_id = getattr(request, "META", {}).get("HTTP_X_REQUEST_ID", "")
    return {
        "error": {
            "code": code or _CODES.get(status_code, "ERROR"),
            "message": message,
            "failedServices": [],
            "partialData": False,
            "requestId": request_id,
        },
        "data": {},
    }


def error_response(request: Any, status_code: int, message: str, **extra: Any) -> Response:
    code = extra.pop("code", None)
    headers = extra.pop("headers", None)
    return Response({**error_body(request, status_code, message, code), **extra}, status=status_code, headers=headers)


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """DRF's exceptions (auth, permission, throttle, parse, 404, 405) as the envelope."""
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 (handler500 answers with the envelope)
    headers: dict[str, str] = {}
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = str(int(wait) + 1)
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    return error_response(request, exc.status_code, detail, headers=headers)


class StaffSessionAuthentication(SessionAuthentication):
    """A logged-in staff user's session (with DRF's CSRF check on unsafe methods)."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None or not result[0].is_staff:
            return None
        return result


class ModelPermissions(BasePermission):
    """The view's ``required_perms[method]`` (all of them), for an authenticated user.
    Unauthenticated requests raise NotAuthenticated, so DRF answers 401."""

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated:
            raise exceptions.NotAuthenticated()
        perms: Mapping[str, tuple[str, ...]] = getattr(view, "required_perms", {})
        needed = perms.get(request.method or "", None)
        if needed is None:
            return True  # methods the view does not declare: 405 follows from the view
        if user.has_perms(needed):
            return True
        raise exceptions.PermissionDenied(f"Needs the permissions {', '.join(needed)}.")


class _ConfiguredRateThrottle(SimpleRateThrottle):
    """Per user, rate from settings.GATEWAY_ADMIN_API (read at each request, so tests and
    operators can change it without a restart of the class)."""

    setting = ""

    def get_rate(self) -> str | None:
        rate: str | None = settings.GATEWAY_ADMIN_API[self.setting]
        return rate or None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        ident = str(user.pk) if user is not None and user.is_authenticated else self.get_ident(request)
        return f"admin-api-throttle:{self.scope}:{ident}"


class ReadThrottle(_ConfiguredRateThrottle):
    scope, setting = "read", "READ_RATE"

    def allow_request(self, request: Request, view: Any) -> bool:
        return True if request.method not in ("GET", "HEAD", "OPTIONS") else super().allow_request(request, view)


class WriteThrottle(_ConfiguredRateThrottle):
    scope, setting = "write", "WRITE_RATE"

    def allow_request(self, request: Request, view: Any) -> bool:
        return True if request.method in ("GET", "HEAD", "OPTIONS") else super().allow_request(request, view)


class AdminApiView(APIView):
    """The base of every admin API view."""

    authentication_classes = [TokenAuthentication, StaffSessionAuthentication]
    permission_classes = [ModelPermissions]
    throttle_classes = [ReadThrottle, WriteThrottle]
    required_perms: Mapping[str, tuple[str, ...]] = {}

    def get_exception_handler(self) -> Callable[[Exception, Any], Response | None]:
        return exception_handler


def not_found(request: Any, message: str) -> Response:
    return error_response(request, status.HTTP_404_NOT_FOUND, message)
