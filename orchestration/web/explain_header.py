"""``X-Gateway-Explain``: a ``Server-Timing`` header for whoever holds the explain token.

Only when ``GATEWAY_EXPLAIN_TOKEN`` is set and the header equals it (compared in
constant time) does the response say anything about its calls; any other
request — no header, a wrong one, or no token configured — is served exactly
as usual. The explained run is marked in the access line (``explain: true``) and
counted in ``gateway_explain_requests_total{source="header"}``.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from orchestration.explain import CallTiming, ExplainRecorder, call_timings, recording, server_timing
from orchestration.observability import metrics
from orchestration.observability.access_log import current_record
from orchestration.plan import Endpoint

EXPLAIN_META = "HTTP_X_GATEWAY_EXPLAIN"  # checked by the aggregate view before calling here

_token: bytes = b""


def install_explain_token(token: str) -> None:
    """Called once by ``gateway_project.wiring``; empty: explain is off."""
    global _token
    _token = token.encode("utf-8")


def token_matches(given: str | None) -> bool:
    if not _token or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), _token)


def _endpoint(runtime_source: Callable[[], Any] | None, name: str) -> Endpoint | None:
    if runtime_source is None or not name:
        return None
    return next((e for e in runtime_source().plan.endpoints if e.name == name), None)


def explained(
    request: HttpRequest, runtime_source: Callable[[], Any] | None, serve: Callable[[], HttpResponse]
) -> HttpResponse:
    """Serve the request; with the right token, record its calls into ``Server-Timing``."""
    if not token_matches(request.META.get(EXPLAIN_META)):
        return serve()
    started = time.perf_counter()
    record = current_record()
    record.extra["explain"] = True
    metrics.observe_explain(source="header")
    with recording(ExplainRecorder()) as recorder:
        response = serve()
    total_ms = (time.perf_counter() - started) * 1000
    endpoint = _endpoint(runtime_source, record.endpoint or recorder.endpoint)
    timings: tuple[CallTiming, ...] = ()
    if endpoint is not None:
        cached = response.get("X-Cache") == "HIT"
        timings = call_timings(endpoint, recorder, failed=response.status_code >= 400, cached=cached)
    response["Server-Timing"] = server_timing(total_ms, timings)
    return response
