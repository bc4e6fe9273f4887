"""Request-scoped log fields and the one access line per aggregate request.

Why contextvars: every log line written while serving a request — by the view,
the engine's greenlets (spawned with ``copy_context().run``), Django itself —
must carry the request id and trace id, and a logging filter on the handler can
read them from the current context without any caller passing them along.

Why the access line is built here and not with ``request.path``/headers: it
lists only fields we chose (endpoint, status, duration, failed services,
partial flag, ids). Query strings and headers are never logged, so a token a
client put in either cannot reach the logs.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestration.observability.tracing import current_trace_id

access_logger = logging.getLogger("gateway.access")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gateway_request_id", default=None)
_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gateway_trace_id", default=None)
_record: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar("gateway_request_record", default=None)


@dataclass(slots=True)
class RequestRecord:
    """What the serving view learns about a request as it goes (for the access line and metrics)."""

    endpoint: str = ""
    failed_services: tuple[str, ...] = ()
    partial: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def bind(*, request_id: str, trace_id: str | None) -> None:
    """Start a request's log context (left in place until ``unbind``: Django writes
    its own lines about a response after the middleware chain has returned)."""
    _request_id.set(request_id)
    _trace_id.set(trace_id)
    _record.set(RequestRecord())


def unbind() -> None:
    _request_id.set(None)
    _trace_id.set(None)
    _record.set(None)


def current_request_id() -> str | None:
    return _request_id.get()


def current_record() -> RequestRecord:
    """The request's record; a throwaway one outside a bound request (so callers never check)."""
    record = _record.get()
    return record if record is not None else RequestRecord()


def note_endpoint(name: str) -> None:
    record = _record.get()
    if record is not None:
        record.endpoint = name


def note_result(*, failed_services: Sequence[str] = (), partial: bool = False) -> None:
    record = _record.get()
    if record is not None:
        record.failed_services = tuple(failed_services)
        record.partial = partial


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` and ``trace_id`` to every record written inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = _request_id.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        trace_id = _trace_id.get() or current_trace_id()
        if trace_id is not None and not hasattr(record, "trace_id"):
            record.trace_id = trace_id
        return True


_enabled = True


def set_enabled(enabled: bool) -> None:
    """``GATEWAY_ACCESS_LOG=off`` (read by ``gateway_project.wiring``): no access line."""
    global _enabled
    _enabled = enabled


def write_access_line(*, method: str, path: str, status: int, duration_s: float, record: RequestRecord) -> None:
    """One structured line per aggregate request (path without its query string)."""
    if not _enabled or not access_logger.isEnabledFor(logging.INFO):
        return
    access_logger.info(
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "endpoint": record.endpoint or None,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round(duration_s * 1000.0, 2),
            "failed_services": list(record.failed_services),
            "partial": record.partial,
            "request_id": _request_id.get(),
            "trace_id": _trace_id.get() or current_trace_id(),
            **({"explain": True} if record.extra.get("explain") else {}),  # an explain run (token holder)
        },
    )
