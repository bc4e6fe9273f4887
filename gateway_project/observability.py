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
        tracing.instrument_httpx()


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
