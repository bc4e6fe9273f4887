"""A lean lane for aggregate routes in front of Django's request handler.

Measured on a real server beside Django's handler alone (bench/README.md, round 12; two
workers on one core, every feature on, 5 rounds): CPU per checkout request 13 % less at 10
clients (cheaper in 4 of 5 rounds), 5 % less at 100 (5 of 5). In one warm process (round 5) it
had measured 3 %: what it saves is mostly code a request no longer walks through, which
counts most when a mostly idle worker wakes with cold caches.

Every aggregate request used to go through Django's whole handler: request
signals, the script prefix, eleven middlewares, the URL resolver, and the
conversion of the response for WSGI. Measured in one process (bench/README.md,
round 5), all of that outside the view was 17 % of a checkout's CPU. The lane
keeps what an aggregate answer needs of it and skips the rest:

- kept, the same objects in the same order as in ``settings.MIDDLEWARE``: the
  ``X-Forwarded-Proto`` filter, django-prometheus's two middlewares (the same
  series and labels: the view's name comes from a remembered ``ResolverMatch``),
  the request's trace context, the request id and log context, the security and
  X-Frame-Options headers, ``CommonMiddleware`` (host validation: a disallowed
  Host is Django's 400 envelope; Content-Length); each layer's exceptions become
  responses as in Django (``convert_exception_to_response``); the response is
  handed to the WSGI server as Django's handler does, so closing it sends
  ``request_finished`` (the log context is unbound, connections checked);
- skipped: WhiteNoise (static paths never take the lane), the session,
  authentication and message middlewares (they step aside on API paths anyway),
  CSRF (the aggregate view is CSRF-exempt and never asks for a token), the URL
  resolver per request (a path's route is resolved once and remembered), and
  ``request_started`` (its receivers reset database state at a request's start; a
  session-authenticated request's query is closed by ``request_finished``, sent as above).

Django serves every request the lane does not take: paths that resolve to any
other view (admin, console, health, metrics, OpenAPI, webhooks), static files and
a non-empty ``SCRIPT_NAME``. While spans are recorded (an OTLP exporter configured)
the lane still serves aggregate routes: the trace middleware it keeps hands the
request to the OpenTelemetry instrumentation's own middleware, which builds the same
server span (name from the remembered route, attributes, status) as under Django's
handler. No ``process_exception`` hook is called: the aggregate view answers every
exception itself (the contract's envelope), so none reaches a middleware.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, cast

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponseBase
from django.urls import Resolver404, ResolverMatch, get_resolver
from django.utils.module_loading import import_string

from gateway_project.middleware import is_site_path
from gateway_project.wsgi_request import ClientSafeRequest

AGGREGATE_ROUTE = "aggregate"  # the URLconf name of the catch-all aggregate route

# Middlewares that do nothing an aggregate answer needs (see the module docstring).
SKIPPED_MIDDLEWARE = frozenset(
    {
        "whitenoise.middleware.WhiteNoiseMiddleware",
        "gateway_project.middleware.SiteSessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "gateway_project.middleware.SiteAuthenticationMiddleware",
        "gateway_project.middleware.SiteMessageMiddleware",
    }
)
_ROUTE_CACHE_SIZE = 1024  # distinct paths remembered (most repeat); bounds what a flood of random paths can hold

_Handler = Callable[[HttpRequest], HttpResponseBase]


class ApiLane:
    """The WSGI application: aggregate routes by the lane, everything else by ``django_app``."""

    def __init__(self, django_app: WSGIHandler) -> None:
        self._django = django_app
        self._static_prefix = "/" + settings.STATIC_URL.lstrip("/") if settings.STATIC_URL else None
        self._view_hooks: list[Callable[..., Any]] = []
        self._chain = self._build_chain()
        self._route = functools.lru_cache(maxsize=_ROUTE_CACHE_SIZE)(self._resolve)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        match = self._lane_match(environ)
        if match is None:
            return self._django(environ, start_response)
        request = ClientSafeRequest(environ)
        request.resolver_match = match
        response = self._chain(request)
        response._handler_class = type(self._django)  # type: ignore[attr-defined]  # request_finished's sender, as in Django
        status = f"{response.status_code} {response.reason_phrase}"
        headers = [*response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())]
        start_response(status, headers)
        return response  # an iterable of bytes; closing it sends request_finished

    def _lane_match(self, meta: dict[str, Any]) -> ResolverMatch | None:
        """The aggregate route's match for this WSGI environ (Django's ``request.META``), or None."""
        if meta.get("SCRIPT_NAME"):
            return None
        path = meta.get("PATH_INFO", "")
        if not isinstance(path, str) or is_site_path(path):
            return None
        if self._static_prefix is not None and path.startswith(self._static_prefix):
            return None
        return self._route(path)

    @staticmethod
    def _resolve(path: str) -> ResolverMatch | None:
        try:
            match = get_resolver().resolve(path)
        except Resolver404:
            return None
        return match if match.url_name == AGGREGATE_ROUTE else None

    def _build_chain(self) -> _Handler:
        """The kept middlewares around the view, built as ``BaseHandler.load_middleware`` does."""
        handler = cast(_Handler, convert_exception_to_response(self._view))
        for path in reversed(settings.MIDDLEWARE):
            if path in SKIPPED_MIDDLEWARE:
                continue
            middleware = import_string(path)(handler)
            if hasattr(middleware, "process_view"):
                self._view_hooks.insert(0, middleware.process_view)
            handler = cast(_Handler, convert_exception_to_response(middleware))
        return handler

    def _view(self, request: HttpRequest) -> HttpResponseBase:
        match = request.resolver_match
        assert match is not None  # set by __call__
        for hook in self._view_hooks:
            response: HttpResponseBase | None = hook(request, match.func, match.args, match.kwargs)
            if response is not None:
                return response
        return match.func(request, *match.args, **match.kwargs)  # type: ignore[no-any-return]
