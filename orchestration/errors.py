"""Errors are values with a kind, mapped to HTTP in this one module.

    GatewayError                      raised at the edge, before or instead of a plan run
    ├── Unauthenticated               401 UNAUTHENTICATED
    ├── RateLimited                   429 RATE_LIMITED      (+ Retry-After)
    ├── Overloaded                    503 OVERLOADED        (+ Retry-After)
    ├── BadRequest                    400 BAD_REQUEST
    ├── PayloadTooLarge               413 PAYLOAD_TOO_LARGE
    ├── RequestTimeout                408 REQUEST_TIMEOUT   (body not received in time)
    ├── NotFound                      404 NOT_FOUND
    ├── MethodNotAllowed              405 METHOD_NOT_ALLOWED
    └── ContractViolation             502 CONTRACT_VIOLATION (response_schema, on_schema_violation: fail)

A failed plan run is a ``Failure`` value (``FailureKind`` plus the failed
services); ``failure_to_error`` applies the contract's precedence and table.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class ErrorCode(enum.StrEnum):
    DOWNSTREAM_UNAUTHORIZED = "DOWNSTREAM_UNAUTHORIZED"
    DOWNSTREAM_FORBIDDEN = "DOWNSTREAM_FORBIDDEN"
    DOWNSTREAM_CLIENT_ERROR = "DOWNSTREAM_CLIENT_ERROR"
    DOWNSTREAM_FAILURE = "DOWNSTREAM_FAILURE"
    CIRCUIT_OPEN = "CIRCUIT_OPEN"
    GATEWAY_TIMEOUT = "GATEWAY_TIMEOUT"
    RATE_LIMITED = "RATE_LIMITED"
    OVERLOADED = "OVERLOADED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    BAD_REQUEST = "BAD_REQUEST"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    CONTRACT_VIOLATION = "CONTRACT_VIOLATION"
    CSRF_FAILED = "CSRF_FAILED"


class Abandoned(BaseException):
    """The request's client is gone: serve it no further. A ``BaseException`` (like
    ``gevent.Timeout``), so no ``except Exception`` on the way turns it into an answer."""


class GatewayError(Exception):
    """An error the gateway answers itself, with a stable code and status."""

    status: int = 500
    code: ErrorCode = ErrorCode.INTERNAL_ERROR
    default_message: str = "Internal gateway error"

    def __init__(
        self,
        message: str | None = None,
        *,
        failed_services: Sequence[str] = (),
        retry_after_s: int | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)
        self.failed_services = tuple(failed_services)
        self.retry_after_s = retry_after_s
        self.headers = dict(headers or {})
        if status is not None:
            self.status = status

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after_s is not None:
            headers["Retry-After"] = str(max(1, int(self.retry_after_s)))
        return headers


class Unauthenticated(GatewayError):
    status, code, default_message = 401, ErrorCode.UNAUTHENTICATED, "Authentication required"

    def response_headers(self) -> dict[str, str]:
        # RFC 9110 section 15.5.2: a 401 says how to authenticate.
        return {"WWW-Authenticate": 'Bearer realm="gateway"', **super().response_headers()}


class CsrfFailed(GatewayError):
    """A session-authenticated unsafe request without a valid CSRF token (Django's check)."""

    status, code, default_message = 403, ErrorCode.CSRF_FAILED, "CSRF token missing or incorrect"


class RateLimited(GatewayError):
    status, code, default_message = 429, ErrorCode.RATE_LIMITED, "Rate limit exceeded"


class Overloaded(GatewayError):
    status, code, default_message = 503, ErrorCode.OVERLOADED, "Gateway overloaded, retry later"


class BadRequest(GatewayError):
    status, code, default_message = 400, ErrorCode.BAD_REQUEST, "Bad request"


class PayloadTooLarge(GatewayError):
    status, code, default_message = 413, ErrorCode.PAYLOAD_TOO_LARGE, "Request body too large"


class RequestTimeout(GatewayError):
    status, code, default_message = 408, ErrorCode.REQUEST_TIMEOUT, "Request body not received in time"


class NotFound(GatewayError):
    status, code, default_message = 404, ErrorCode.NOT_FOUND, "No such endpoint"


class MethodNotAllowed(GatewayError):
    status, code, default_message = 405, ErrorCode.METHOD_NOT_ALLOWED, "Method not allowed"


class ContractViolation(GatewayError):
    """The assembled response broke the endpoint's ``response_schema`` (``on_schema_violation: fail``)."""

    status, code, default_message = 502, ErrorCode.CONTRACT_VIOLATION, "The response broke the endpoint's contract"


class DownstreamError(GatewayError):
    """A required downstream call failed; built only by ``failure_to_error``."""


class FailureKind(enum.Enum):
    """Why a required call failed, in the contract's precedence order."""

    UNAUTHORIZED = 1  # downstream 401
    FORBIDDEN = 2  # downstream 403
    RATE_LIMITED = 3  # downstream 429 after retries
    CLIENT_ERROR = 4  # other downstream 4xx
    FAILURE = 5  # 5xx, connection, bad body, bulkhead full
    CIRCUIT_OPEN = 6  # breaker open (a 502 too, with its own code)
    TIMEOUT = 7  # attempt timed out or the endpoint deadline passed


@dataclass(frozen=True, slots=True)
class RequiredFailure:
    """One failed required call."""

    service: str
    kind: FailureKind
    status: int | None = None  # the downstream status when there was one
    retry_after_s: int | None = None
    reason: str = ""  # a located reason the client may read ("call 'products': for_each gave ...")


@dataclass(frozen=True, slots=True)
class Failure:
    """A plan run that cannot produce a response: every failed required call,
    plus every failed service (required or not) in call order."""

    required: tuple[RequiredFailure, ...]
    failed_services: tuple[str, ...] = field(default=())


_PRECEDENCE: dict[FailureKind, int] = {
    FailureKind.UNAUTHORIZED: 0,
    FailureKind.FORBIDDEN: 0,
    FailureKind.RATE_LIMITED: 1,
    FailureKind.CLIENT_ERROR: 2,
    FailureKind.FAILURE: 3,
    FailureKind.CIRCUIT_OPEN: 3,
    FailureKind.TIMEOUT: 4,
}


def failure_to_error(failure: Failure) -> DownstreamError:
    """Apply the contract's precedence (401/403, 429, 4xx, 502, 504) and table."""
    worst = min(failure.required, key=lambda f: _PRECEDENCE[f.kind])
    failed = failure.failed_services
    kind = worst.kind
    if kind in (FailureKind.UNAUTHORIZED, FailureKind.FORBIDDEN):
        unauthorized = kind is FailureKind.UNAUTHORIZED
        code = ErrorCode.DOWNSTREAM_UNAUTHORIZED if unauthorized else ErrorCode.DOWNSTREAM_FORBIDDEN
        message = f"Service '{worst.service}' refused the call ({403 - 2 * unauthorized})"
        return _error(401 if unauthorized else 403, code, message, failed)
    if kind is FailureKind.RATE_LIMITED:
        error = _error(429, ErrorCode.RATE_LIMITED, f"Service '{worst.service}' is rate limiting", failed)
        error.retry_after_s = worst.retry_after_s if worst.retry_after_s is not None else 1
        return error
    if kind is FailureKind.CLIENT_ERROR:
        message = f"Service '{worst.service}' rejected the request"
        return _error(worst.status or 400, ErrorCode.DOWNSTREAM_CLIENT_ERROR, message, failed)
    if kind is FailureKind.TIMEOUT:
        return _error(504, ErrorCode.GATEWAY_TIMEOUT, "Downstream services did not answer in time", failed)
    only_open = all(f.kind is FailureKind.CIRCUIT_OPEN for f in failure.required if _PRECEDENCE[f.kind] == 3)
    if only_open:
        return _error(502, ErrorCode.CIRCUIT_OPEN, "Circuit open: a required service is being skipped", failed)
    reasons = [f.reason for f in failure.required if f.kind is FailureKind.FAILURE and f.reason]
    message = "; ".join(reasons) if reasons else "One or more services unavailable"
    return _error(502, ErrorCode.DOWNSTREAM_FAILURE, message, failed)


def _error(status: int, code: ErrorCode, message: str, failed: tuple[str, ...]) -> DownstreamError:
    error = DownstreamError(message, failed_services=failed, status=status)
    error.code = code
    return error


def envelope(error: GatewayError, *, request_id: str, partial: bool = False) -> dict[str, Any]:
    """The contract's error envelope, for every non-2xx the gateway produces."""
    return {
        "error": {
            "code": str(error.code),
            "message": error.message,
            "failedServices": list(error.failed_services),
            "partialData": partial,
            "requestId": request_id,
        },
        "data": {},
    }
