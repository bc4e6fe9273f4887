"""Time an aggregate request, count it, and write its one access line."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from orchestration.observability import access_log, metrics

UNMATCHED = "unmatched"  # requests that matched no endpoint (404/405): one label, not one per path

# Where a finished request of a served endpoint is also counted for the recent per-endpoint
# figures (``RecentStats.record_request``); installed by ``gateway_project.wiring``.
RequestStats = Callable[..., None]
_request_stats: RequestStats | None = None


def install_request_stats(record_request: RequestStats | None) -> None:
    global _request_stats
    _request_stats = record_request


def observed(request: HttpRequest, answer: Callable[[], HttpResponse]) -> HttpResponse:
    """Run ``answer`` and record what the view noted (endpoint, failed services, partial)."""
    started = time.perf_counter()
    response = answer()
    duration_s = time.perf_counter() - started
    record = access_log.current_record()
    endpoint = record.endpoint or UNMATCHED
    method = request.method or "GET"
    metrics.observe_request(
        endpoint=endpoint,
        method=metrics.method_label(method),
        status=response.status_code,
        duration_s=duration_s,
        partial=record.partial,
    )
    if _request_stats is not None and record.endpoint:  # unmatched paths: no series
        _request_stats(endpoint=record.endpoint, status=response.status_code, duration_s=duration_s)
    access_log.write_access_line(
        method=method, path=request.path, status=response.status_code, duration_s=duration_s, record=record
    )
    return response
