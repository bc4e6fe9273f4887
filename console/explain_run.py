"""/console/explain/: run one request through the real engine and keep its waterfall.

The request goes through the served runtime exactly as a client's would after
admission: the same executor, breakers, bulkheads and response cache rules
(``orchestration.web.edge.respond``). Bad input gets the 400 a client would get.
The run is logged as an explain run, with the operator's name.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpResponse

from orchestration.context import RequestContext
from orchestration.edge.client_auth import Identity
from orchestration.errors import BadRequest, Failure, GatewayError, envelope, failure_to_error
from orchestration.explain import CallTiming, ExplainRecorder, call_timings, element_timings, recording
from orchestration.observability import metrics
from orchestration.plan import Endpoint
from orchestration.web import edge
from orchestration.web.client_request import json_body

logger = logging.getLogger("gateway.explain")


@dataclass(frozen=True, slots=True)
class ExplainForm:
    endpoint: str
    path: dict[str, str]
    query: dict[str, str]
    body: str
    claims: str


@dataclass(frozen=True, slots=True)
class Bar:
    """One call of the waterfall, positioned in percent of the whole run."""

    timing: CallTiming
    left_pct: float
    width_pct: float
    breaker_state: str


@dataclass(frozen=True, slots=True)
class ExplainResult:
    endpoint: Endpoint
    status: int
    body: str  # the JSON the client would get, pretty-printed
    total_ms: float
    bars: tuple[Bar, ...]
    cached: bool
    request_id: str


def _claims(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        claims = json.loads(text)
    except ValueError:
        raise BadRequest("The user's claims are not valid JSON") from None
    if not isinstance(claims, dict):
        raise BadRequest("The user's claims must be a JSON object")
    return claims


def _error_result(endpoint: Endpoint, error: GatewayError, request_id: str) -> ExplainResult:
    body = json.dumps(envelope(error, request_id=request_id), indent=2, ensure_ascii=False)
    return ExplainResult(endpoint, error.status, body, 0.0, (), False, request_id)


def explain_run(runtime: Any, form: ExplainForm, *, operator: str) -> ExplainResult | None:
    """Run the form's request; None when the endpoint is not served."""
    endpoint = next((e for e in runtime.plan.endpoints if e.name == form.endpoint), None)
    if endpoint is None:
        return None
    request_id = "explain-" + uuid.uuid4().hex[:16]
    try:
        claims = _claims(form.claims)
        body = json_body(form.body.encode("utf-8"), max_depth=settings.GATEWAY["MAX_JSON_DEPTH"])
    except GatewayError as error:
        return _error_result(endpoint, error, request_id)
    auth = runtime.plan.layer.auth
    user_claim = auth.jwt.user_claim if auth.jwt is not None else "sub"
    user_id = claims.get(user_claim)
    identity = Identity(user_id=None if user_id is None else str(user_id), claims=claims)
    context = RequestContext(
        method=endpoint.method,
        path_params=form.path,
        query=form.query,
        headers={},
        body=body,
        user=claims,
        request_id=request_id,
    )
    logger.info("explain run of %s by %s", endpoint.name, operator, extra={"request_id": request_id, "explain": True})
    metrics.observe_explain(source="console")
    recorder = ExplainRecorder()
    with recording(recorder):
        try:
            response = edge.respond(
                runtime=runtime,
                endpoint=endpoint,
                context=context,
                identity=identity,
                render=lambda result: _render(result, request_id),
                render_cached=lambda answer: _json(answer, 200),
            )
        except GatewayError as error:
            return _error_result(endpoint, error, request_id)
    total_ms = recorder.elapsed_s() * 1000
    cached = response.get("X-Cache") == "HIT"
    timings = call_timings(endpoint, recorder, failed=response.status_code >= 400, cached=cached)
    scale = max(total_ms, max((t.start_ms + t.duration_ms for t in timings), default=0.0), 0.001)
    rows = [row for t in timings for row in (t, *element_timings(t))]  # a for_each call: a row per element
    bars = tuple(
        Bar(t, 100 * t.start_ms / scale, max(0.5, 100 * t.duration_ms / scale), _breaker_state(runtime, t.service))
        for t in rows
    )
    pretty = json.dumps(json.loads(response.content), indent=2, ensure_ascii=False)
    return ExplainResult(endpoint, response.status_code, pretty, total_ms, bars, cached, request_id)


def _json(body: Any, status: int) -> HttpResponse:
    return HttpResponse(json.dumps(body), status=status, content_type="application/json")


def _render(result: Any, request_id: str) -> HttpResponse:
    if isinstance(result, Failure):
        error = failure_to_error(result)
        return _json(envelope(error, request_id=request_id), error.status)
    return _json(result.body, 200)


def _breaker_state(runtime: Any, service: str) -> str:
    try:
        return str(runtime.pool.breaker(service).snapshot().state)
    except Exception:  # noqa: BLE001 - a breaker store that cannot answer must not break the page
        return "unknown"
