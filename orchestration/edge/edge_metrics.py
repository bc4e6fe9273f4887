"""What the edge reports: a small protocol, a no-op default and a Prometheus one.

The edge fails open when Redis is unreachable (requests are served unlimited and
uncached), so an outage must be visible somewhere other than in client errors:
every fallback is counted here. ``on_store_error`` has the same signature as
``orchestration.observer.Observer.on_store_error``, so one object can serve both.
"""

from __future__ import annotations

from typing import Protocol

from prometheus_client import Counter

store_errors = Counter(
    "gateway_edge_store_errors_total",
    "Edge operations that could not reach their shared store (Redis) and failed open, per store.",
    ["store"],
)


class EdgeMetrics(Protocol):
    def on_store_error(self, store: str, error: Exception) -> None: ...

    def on_rate_limited(self, scope: str) -> None: ...

    def on_cache_lookup(self, endpoint: str, hit: bool) -> None: ...


class NullEdgeMetrics:
    """The default for unit tests: observe nothing."""

    def on_store_error(self, store: str, error: Exception) -> None:
        return None

    def on_rate_limited(self, scope: str) -> None:
        return None

    def on_cache_lookup(self, endpoint: str, hit: bool) -> None:
        return None


class PrometheusEdgeMetrics(NullEdgeMetrics):
    """Counts store failures; rate-limit and cache series belong to the metrics
    module, which can subclass this and override the other two hooks."""

    def on_store_error(self, store: str, error: Exception) -> None:
        store_errors.labels(store=store).inc()
