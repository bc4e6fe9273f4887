"""A/B for bench/micro.py --ab: B = the upper bound of a lean lane for aggregate routes.

B answers the checkout from a WSGI callable that builds Django's request object and
calls the aggregate view with only the request id / log context middleware around it:
no middleware chain, no URL resolver, no request signals, no django-prometheus. It
keeps less than the product must (no security headers, no per-view metrics, no host
check), so it bounds what any lean lane could save; it is not a candidate.
"""

from typing import Any

import gateway_project.wsgi as wsgi
from gateway_project.wsgi_request import ClientSafeRequest
from orchestration.observability import access_log
from orchestration.web import aggregate
from orchestration.web.ops_logging import RequestLogContextMiddleware

_django = wsgi.application
_chain = RequestLogContextMiddleware(aggregate.aggregate)


def _lane(environ: dict[str, Any], start_response: Any) -> Any:
    request = ClientSafeRequest(environ)
    try:
        response = _chain(request)
    finally:
        access_log.unbind()
    response["Content-Length"] = str(len(response.content))
    start_response(f"{response.status_code} {response.reason_phrase}", list(response.items()))
    return response


def toggle(on: bool) -> None:
    wsgi.application = _lane if on else _django  # type: ignore[assignment]
