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

import contextlib
import contextvars
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pythonjsonlogger.json import JsonFormatter

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
    message = f"{method} {path} {status}"
    fields: dict[str, object] = {
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
    }
    handler = _stock_handler()
    if handler is None or not _write_direct(handler, message, fields):
        access_logger.info("%s %s %s", method, path, status, extra=fields)


# --- the access line without logging's record machinery ---------------------------
#
# Why: through ``logging`` one access line cost ~4.5 % of an aggregate request's CPU
# (a LogRecord with ~25 attributes, the caller's frame looked up, the filter, the JSON
# formatter walking the record's __dict__ to find the extras). When the process logs
# the stock way (settings.LOGGING: the access logger propagates to one root
# StreamHandler with python-json-logger's JsonFormatter, the request-context filter
# and nothing else), the same line is built here directly: the formatter's own
# ``formatTime`` and ``serialize_log_record`` make the same bytes, in the same key
# order. Any other set-up (a test's capture handler, another formatter, a filter, a
# logger configured on gateway.access) goes through ``logging`` as before.

_JSON_FIELDS = ["asctime", "levelname", "name", "process", "message"]


class _Stamp:
    """What ``logging.Formatter.formatTime`` reads from a record."""

    __slots__ = ("created", "msecs")

    def __init__(self, created: float) -> None:
        self.created = created
        self.msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord.__init__


def _stock_handler() -> logging.StreamHandler[Any] | None:
    logger = access_logger
    if logger.handlers or logger.filters or logger.disabled or not logger.propagate:
        return None
    parent = logger.parent
    while parent is not None and parent.parent is not None:  # "gateway", then the root
        if parent.handlers or not parent.propagate:
            return None
        parent = parent.parent
    if parent is None or len(parent.handlers) != 1:
        return None
    handler = parent.handlers[0]
    if type(handler) is not logging.StreamHandler or handler.level > logging.INFO or not _stock_filters(handler):
        return None
    formatter = handler.formatter
    if (
        type(formatter) is not JsonFormatter
        or formatter._required_fields != _JSON_FIELDS
        or formatter.defaults
        or formatter.static_fields
        or formatter.rename_fields
        or formatter.timestamp
        or formatter.rename_fields_keep_missing
    ):
        return None
    return handler


def _stock_filters(handler: logging.Handler) -> bool:
    filters = handler.filters
    return len(filters) == 1 and type(filters[0]) is RequestContextFilter  # a no-op here: the ids are fields


def _write_direct(handler: logging.StreamHandler[Any], message: str, fields: dict[str, object]) -> bool:
    formatter = handler.formatter
    assert isinstance(formatter, JsonFormatter)
    data: dict[str, object] = {
        "asctime": formatter.formatTime(_Stamp(time.time()), formatter.datefmt),  # type: ignore[arg-type]
        "levelname": "INFO",
        "name": access_logger.name,
        "process": os.getpid(),
        "message": message,
    }
    data.update(fields)
    try:
        line = formatter.serialize_log_record(data) + handler.terminator
        with handler.lock or contextlib.nullcontext():
            handler.stream.write(line)
            handler.flush()
    except (OSError, ValueError, TypeError):  # logging then handles it its way: a line never fails a request
        return False
    return True
