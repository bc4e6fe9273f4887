"""The one view that serves every aggregate endpoint.

Order of the edge: route (404/405) → client auth (401) → rate limits (429/503)
→ request body (400/408/413) → response cache (GET) or run the plan → 200 with the
assembled response, or the contract's envelope (``orchestration.web.edge``).
The body's bytes are received before the request takes an admission slot
(``orchestration.web.request_body``); its errors are raised in this order.
No database query happens here: the runtime holds a compiled plan.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from orchestration import fast_json
from orchestration.context import RequestContext
from orchestration.edge.client_auth import Identity
from orchestration.errors import (
    Abandoned,
    Failure,
    GatewayError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    envelope,
    failure_to_error,
)
from orchestration.observability.access_log import current_record, note_endpoint, note_result
from orchestration.routing import Match, NoRoute
from orchestration.web import edge
from orchestration.web.admission import AdmissionGate
from orchestration.web.client_gone import NoWatch, Watch, client_closed_error, watch_hang_up
from orchestration.web.client_request import json_body, lower_headers, query_params, request_id_of
from orchestration.web.explain_header import EXPLAIN_META, explained
from orchestration.web.ops_access import observed
from orchestration.web.request_body import ReceivedBody, receive_body
from orchestration.web.runtime import GatewayRuntime

logger = logging.getLogger("gateway.aggregate")

_RuntimeSource = Callable[[], GatewayRuntime]
_runtime_source: _RuntimeSource | None = None


def install_runtime_source(source: _RuntimeSource) -> None:
    """Called once by ``gateway_project.wiring`` (the place settings become objects)."""
    global _runtime_source
    _runtime_source = source


def json_response(body: Any, *, status: int, request_id: str, headers: dict[str, str] | None = None) -> HttpResponse:
    payload = fast_json.dumps(body)
    response = HttpResponse(payload, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    response["X-Request-ID"] = request_id
    return response


def error_response(error: GatewayError, *, request_id: str) -> HttpResponse:
    # An envelope is never stored by a cache or CDN in front of the gateway: a 404, a
    # 429 or a 503 OVERLOADED cached there would refuse clients the gateway would admit.
    return json_response(
        envelope(error, request_id=request_id),
        status=error.status,
        request_id=request_id,
        headers={"Cache-Control": "no-store", **error.response_headers()},
    )


def _resolve(runtime: GatewayRuntime, request: HttpRequest) -> Match:
    try:
        return runtime.router.resolve(request.method or "GET", request.path)
    except NoRoute as missing:
        if missing.allowed:
            raise MethodNotAllowed(headers={"Allow": ", ".join(missing.allowed)}) from None
        raise NotFound() from None


def _context(
    request: HttpRequest,
    match: Match,
    request_id: str,
    identity: Identity,
    received: ReceivedBody,
    client_gone: Callable[[], bool],
) -> RequestContext:
    headers = lower_headers(request)
    body = json_body(received.content(), max_depth=settings.GATEWAY["MAX_JSON_DEPTH"])
    return RequestContext(
        method=request.method or "GET",
        path_params=match.path_params,
        query=query_params(request),
        headers=headers,
        body=body,
        user=dict(identity.claims),
        request_id=request_id,
        authorization=headers.get("authorization"),
        client_gone=client_gone,
    )


def _serve(
    request: HttpRequest, request_id: str, received: ReceivedBody, client_gone: Callable[[], bool]
) -> HttpResponse:
    if _runtime_source is None:
        raise RuntimeError("gateway runtime not installed (gateway_project.wiring)")
    runtime = _runtime_source()
    match = _resolve(runtime, request)
    note_endpoint(match.endpoint.name)
    admission = edge.admit(request, runtime, match)
    try:
        context = _context(request, match, request_id, admission.identity, received, client_gone)
        response = edge.respond(
            runtime=runtime,
            endpoint=match.endpoint,
            context=context,
            identity=admission.identity,
            render=lambda result: _render(result, request_id),
            render_cached=lambda body: json_response(body, status=200, request_id=request_id),
        )
    except GatewayError as error:
        raise admission.add_headers(error) from None
    return admission.decorate(response)


def _render(result: Any, request_id: str) -> HttpResponse:
    if isinstance(result, Failure):
        note_result(failed_services=result.failed_services)
        return error_response(failure_to_error(result), request_id=request_id)
    note_result(failed_services=result.failed_services, partial=result.partial)
    return json_response(result.body, status=200, request_id=request_id)


@csrf_exempt
def aggregate(request: HttpRequest, path: str = "") -> HttpResponse:
    request_id = request_id_of(request)
    return observed(request, lambda: _answer(request, request_id))


_gate = AdmissionGate(0, 0.0)


def install_admission_gate(gate: AdmissionGate) -> None:
    """Called once by ``gateway_project.wiring`` (``GATEWAY_MAX_IN_FLIGHT``; ``admission``)."""
    global _gate
    _gate = gate


def _answer(request: HttpRequest, request_id: str) -> HttpResponse:
    limits = settings.GATEWAY
    # Before the gate: a client dripping its body must not hold a slot others need.
    received = receive_body(request, max_bytes=limits["MAX_BODY_BYTES"], timeout_s=limits["BODY_TIMEOUT_MS"] / 1000)
    try:
        with watch_hang_up(request.META) as watch:  # from here on, a client that hangs up stops its request
            return _answer_received(request, request_id, received, watch)
    except Abandoned:
        _note_route(request)  # gone while waiting for admission: never routed yet
        response = error_response(client_closed_error(), request_id=request_id)
        response.reason_phrase = "Client Closed Request"  # nginx's; Django knows no phrase for 499
        return response


def _note_route(request: HttpRequest) -> None:
    """The endpoint of a request not routed yet, for its access line and metrics."""
    if current_record().endpoint or _runtime_source is None:
        return
    with contextlib.suppress(GatewayError):  # no endpoint (404/405): unmatched, like any such request
        note_endpoint(_resolve(_runtime_source(), request).endpoint.name)


def _answer_received(
    request: HttpRequest, request_id: str, received: ReceivedBody, watch: Watch | NoWatch
) -> HttpResponse:
    gate = _gate
    if not watch.interruptible(gate.enter):  # a client gone while waiting for a slot leaves the queue at once
        return error_response(Overloaded(retry_after_s=1), request_id=request_id)
    try:
        answer = partial(_answer_admitted, request, request_id, received, watch.is_gone)
        if EXPLAIN_META in request.META:  # Server-Timing for the explain token's holder only
            return explained(request, _runtime_source, answer)
        return answer()
    finally:
        gate.leave()


def _answer_admitted(
    request: HttpRequest, request_id: str, received: ReceivedBody, client_gone: Callable[[], bool]
) -> HttpResponse:
    try:
        return _serve(request, request_id, received, client_gone)
    except GatewayError as error:
        note_result(failed_services=error.failed_services)
        return error_response(error, request_id=request_id)
    except Exception:
        logger.exception(
            "unhandled error serving %s %s", request.method, request.path, extra={"request_id": request_id}
        )
        return error_response(GatewayError(), request_id=request_id)


def openapi(request: HttpRequest) -> HttpResponse:
    """``/openapi.json``: the document of the plan being served right now."""
    from orchestration.openapi import openapi_document

    request_id = request_id_of(request)
    if _runtime_source is None:
        return error_response(GatewayError(), request_id=request_id)
    return json_response(openapi_document(_runtime_source().plan), status=200, request_id=request_id)
