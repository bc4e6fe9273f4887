"""Django-side wiring of metrics, tracing and logs (the engine-side parts live in
``orchestration.observability`` and know nothing of Django).

``ObservabilityConfig.ready`` runs in every process before Django builds its
middleware chain — after gunicorn forks, since the app is never preloaded — which
is the one moment the OpenTelemetry Django instrumentation can insert its
middleware and the batch exporter can start its worker in the right process.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Any

import httpx
from django.apps import AppConfig

from orchestration.observability import service_health, tracing
from orchestration.observability.recent_stats import InProcessStatsSink, RecentStats, RedisStatsSink
from orchestration.observability.service_health import ServiceHealth
from orchestration.observability.telemetry_observer import TelemetryObserver
from orchestration.plan import Plan, Service


class ObservabilityConfig(AppConfig):
    name = "gateway_project"
    label = "gateway_observability"
    verbose_name = "Observability"

    def ready(self) -> None:
        if tracing.configure_tracing() is None:
            return
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        instrumentor = DjangoInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(excluded_urls="healthz,readyz,metrics,static")
            _wrap_instrumentation_middleware()
        tracing.instrument_httpx()


_OTEL_MIDDLEWARE = "opentelemetry.instrumentation.django.middleware.otel_middleware._DjangoMiddleware"


def _wrap_instrumentation_middleware() -> None:
    """Put ``RequestTraceMiddleware`` where the instrumentation inserted its own."""
    from django.conf import settings

    middleware = list(settings.MIDDLEWARE)
    if _OTEL_MIDDLEWARE in middleware:
        middleware[middleware.index(_OTEL_MIDDLEWARE)] = f"{__name__}.{RequestTraceMiddleware.__qualname__}"
        settings.MIDDLEWARE = middleware


class RequestTraceMiddleware:
    """The request's trace context, recorded only when something receives spans.

    While a span processor is installed (an OTLP exporter configured, or one added
    later, as tests do) every request goes through the OpenTelemetry Django
    instrumentation's middleware unchanged: a recorded server span with its
    attributes. Without one, that span would go nowhere, yet building it (span
    name from a URL resolve, request and response attributes, three absolute-URL
    builds) cost more than the rest of tracing together; instead the request gets
    the context such a span would have had — the incoming ``traceparent``'s trace
    id, or a new one, and the configured sampler's flag (``tracing.start_unrecorded_span``)
    — so downstream ``traceparent`` headers and the trace id in log lines are
    the same. The same URLs are excluded as by the instrumentation.
    """

    def __init__(self, get_response: Any) -> None:
        from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware
        from opentelemetry.instrumentation.wsgi import wsgi_getter

        self.get_response = get_response
        self._recorded: Any = _DjangoMiddleware(get_response)  # type: ignore[no-untyped-call]
        self._activation_key = _DjangoMiddleware._environ_activation_key
        self._excluded = _DjangoMiddleware._excluded_urls
        self._getter = wsgi_getter

    def __call__(self, request: Any) -> Any:
        if tracing.spans_recorded():
            return self._recorded(request)
        if self._excluded_request(request):
            return self.get_response(request)
        from opentelemetry import context, propagate, trace

        if trace.get_current_span() is trace.INVALID_SPAN:  # as the instrumentation: a server span
            parent = propagate.extract(request.META, getter=self._getter)
            kind = trace.SpanKind.SERVER
        else:
            parent = context.get_current()
            kind = trace.SpanKind.INTERNAL
        span = tracing.start_unrecorded_span(parent, request.method or "HTTP", kind)
        token = context.attach(trace.set_span_in_context(span, parent))
        try:
            return self.get_response(request)
        finally:
            context.detach(token)

    def _excluded_request(self, request: Any) -> bool:
        """The instrumentation's test (its patterns searched in the absolute URL),
        without building that URL: for patterns that are plain words, as ours are,
        a match in ``scheme://host/path`` is a match in the host or in the path."""
        excluded = self._excluded
        meta = request.META
        return bool(
            excluded.url_disabled(request.path)
            or excluded.url_disabled(meta.get("HTTP_HOST") or meta.get("SERVER_NAME", ""))
        )

    def process_view(self, request: Any, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        if self._activation_key in request.META:  # the request went through the instrumentation
            return self._recorded.process_view(request, view_func, view_args, view_kwargs)
        return None

    def process_exception(self, request: Any, exception: Exception) -> Any:
        if self._activation_key in request.META:
            return self._recorded.process_exception(request, exception)
        return None


@functools.cache
def recent_stats() -> RecentStats:
    """One per process; shared numbers through Redis when configured."""
    from gateway_project import wiring

    client = wiring.redis_client()
    sink = RedisStatsSink(client) if client is not None else InProcessStatsSink()
    stats = RecentStats(sink)
    stats.start_background_flush()
    return stats


@functools.cache
def telemetry_observer() -> TelemetryObserver:
    """The engine's observer and the edge's metrics hook (one object serves both)."""
    return TelemetryObserver(recent=recent_stats())


def traced_transport(transport: httpx.BaseTransport) -> httpx.BaseTransport:
    """Wrap a downstream transport so each HTTP request carries the W3C
    ``traceparent`` of the request's trace (the global httpx instrumentation only
    patches httpx's own transports, and ours is urllib3-based). The span of each
    attempt is written by the telemetry observer; a second, per-HTTP-request
    client span cost more than the exchange it described (bench/README.md)."""
    if tracing.tracing_disabled():
        return transport
    return tracing.PropagatingTransport(transport)


@dataclass(frozen=True, slots=True)
class DownstreamView:
    """What ops pages need at one moment: the plan and each service's health."""

    plan: Plan
    services: tuple[ServiceHealth, ...]
    at: float

    @property
    def status(self) -> service_health.Status:
        return service_health.overall(self.services)

    def get(self, name: str) -> ServiceHealth | None:
        return next((health for health in self.services if health.name == name), None)


def current_runtime() -> Any:
    from gateway_project import wiring

    return wiring.runtime_holder().current()


def downstream_view() -> DownstreamView:
    """Every service of the served plan, judged from its (shared) breaker and recent stats."""
    runtime = current_runtime()
    plan: Plan = runtime.plan
    now = time.time()
    recent_stats().flush()  # this process's last second counts too
    stats = recent_stats().sink.read(plan.services.keys(), now)
    healths = tuple(
        service_health.judge(service, breaker_of(runtime, service).snapshot(), stats[name])
        for name, service in sorted(plan.services.items())
    )
    return DownstreamView(plan=plan, services=healths, at=now)


def breaker_of(runtime: Any, service: Service) -> Any:
    """The service's breaker (``snapshot``/``reset``/``force_open``/``force_closed``)."""
    return runtime.pool.breaker(service.name)
