"""What the edge reports: a small protocol, a no-op default and a Prometheus one.

The edge fails open when Redis is unreachable (requests are served unlimited and
uncached), so an outage must be visible somewhere other than in client errors:
every fallback is counted. ``on_store_error`` has the same signature as
``orchestration.observer.Observer.on_store_error``, so the engine's observer
can take those reports (it logs and counts them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from orchestration.observability import metrics


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


StoreErrorHook = Callable[[str, Exception], None]


class PrometheusEdgeMetrics:
    """Writes the gateway's series (``orchestration.observability.metrics``);
    store errors go to ``on_store_error`` when given (the telemetry observer,
    which also logs them), else straight to the counter."""

    def __init__(self, on_store_error: StoreErrorHook | None = None) -> None:
        self._on_store_error = on_store_error

    def on_store_error(self, store: str, error: Exception) -> None:
        if self._on_store_error is not None:
            self._on_store_error(store, error)
        else:
            metrics.observe_store_error(store=store)

    def on_rate_limited(self, scope: str) -> None:
        metrics.observe_rate_limit_rejection(scope=scope)

    def on_cache_lookup(self, endpoint: str, hit: bool) -> None:
        metrics.observe_cache_lookup(endpoint=endpoint, hit=hit)
