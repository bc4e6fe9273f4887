"""Request id and trace id on every log line of a request, and the id on every response.

The middleware settles the request id once, early, and writes it back into the
request's headers, so the serving view's ``request_id_of`` returns the same id
(a client's sane X-Request-ID, else a new one) and every line agrees. The ids
stay bound until Django reports the request finished: Django writes its own
lines about a response (``django.request``) after the middleware chain returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.signals import request_finished
from django.http import HttpRequest, HttpResponse

from orchestration.observability import access_log
from orchestration.observability.tracing import current_trace_id
from orchestration.web.client_request import request_id_of


class RequestLogContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_of(request)
        request.META["HTTP_X_REQUEST_ID"] = request_id
        request.__dict__.pop("headers", None)  # rebuilt from META on next use
        access_log.bind(request_id=request_id, trace_id=current_trace_id())
        response = self.get_response(request)
        if not response.has_header("X-Request-ID"):  # every response carries it (contract section 2)
            response["X-Request-ID"] = request_id
        return response


def _unbind(sender: Any, **kwargs: Any) -> None:
    access_log.unbind()


request_finished.connect(_unbind, dispatch_uid="gateway-request-log-context")
