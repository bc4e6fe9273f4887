"""/metrics: our series, django-prometheus's, and state read at scrape time.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its values
to files and this view, in whichever worker answers, merges all of them, so one
scrape sees the whole host. Breaker states and latency targets are read from
the shared breaker store and the served plan at scrape time (see
``orchestration.observability.metrics``).

``PrometheusBeforeMiddleware`` and ``PrometheusAfterMiddleware`` here are
django-prometheus's, writing the same series with the same counts, with their
per-request work cut to the metric writes (label children remembered per label
set); settings list them in place of the originals.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from django_prometheus import middleware as django_prometheus_middleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics_core import Metric

from orchestration.observability import metrics

logger = logging.getLogger(__name__)


class PrometheusBeforeMiddleware(django_prometheus_middleware.PrometheusBeforeMiddleware):  # type: ignore[misc]
    """django-prometheus's outermost middleware, called directly instead of through
    ``MiddlewareMixin``'s hooks (the inner chain turns exceptions into responses, so
    its ``process_response`` always ran): the same three writes per request."""

    async_capable = False  # __call__ is synchronous; under ASGI Django adapts it

    def __call__(self, request: HttpRequest) -> Any:
        metrics_ = self.metrics
        metrics_.requests_total.inc()
        started = time.perf_counter()  # django-prometheus's Time(): timeit.default_timer
        response = self.get_response(request)
        metrics_.responses_total.inc()
        metrics_.requests_latency_before.observe(time.perf_counter() - started)
        return response


_RequestChildren = tuple[Any, Any]
_ResponseChildren = tuple[Any, Any, Any, Any]


class PrometheusAfterMiddleware(django_prometheus_middleware.PrometheusAfterMiddleware):  # type: ignore[misc]
    """django-prometheus's per-view middleware, writing the same series, with these changes:

    - a method outside the standard ones is labelled ``"other"`` everywhere (upstream
      writes ``<invalid method>`` in some series and the raw method in its latency
      histogram: a new series per method a client invents);
    - the label children are remembered: ``metric.labels(**labels)`` validates the
      names and takes a lock on every call; here one dict lookup per request finds the
      children of the request's (method, transport), one more those of its (status,
      view, method, charset);
    - the request's headers are read from ``META`` (``request.headers`` is built only
      if something else asks for it).

    Views are the URLconf's names (``<unnamed view>`` when none matched), never a path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._children: dict[tuple[Any, ...], Any] = {}
        self._request_children: dict[tuple[str, bool], _RequestChildren] = {}
        self._response_children: dict[tuple[str, str, str, str | None], _ResponseChildren] = {}

    def label_metric(self, metric: Any, request: HttpRequest, response: Any = None, **labels: Any) -> Any:
        if not labels:
            return metric
        if "method" in labels:
            labels["method"] = metrics.method_label(labels["method"])
        key = (metric, *labels.items())
        child = self._children.get(key)
        if child is None:
            child = metrics.remember_child(self._children, key, metric.labels(**labels))
        return child

    def process_request(self, request: HttpRequest) -> None:
        key = (metrics.method_label(request.method), request.is_secure())
        children = self._request_children.get(key)
        if children is None:
            method, secure = key
            children = (
                self.label_metric(self.metrics.requests_by_method, request, method=method),
                self.label_metric(self.metrics.requests_by_transport, request, transport="https" if secure else "http"),
            )
            metrics.remember_child(self._request_children, key, children)
        for child in children:
            child.inc()
        meta = request.META
        if meta.get("HTTP_X_REQUESTED_WITH") == "XMLHttpRequest":  # = request.headers["x-requested-with"]
            self.metrics.requests_ajax.inc()
        self.metrics.requests_body_bytes.observe(int(meta.get("CONTENT_LENGTH") or 0))
        request.prometheus_after_middleware_event = time.perf_counter()  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: Any) -> Any:
        method = metrics.method_label(request.method)
        view = self._get_view_name(request)
        status = str(response.status_code)
        charset = str(response.charset) if hasattr(response, "charset") else None
        key = (status, view, method, charset)
        children = self._response_children.get(key)
        if children is None:
            children = self._response_children_for(request, response, key)
        by_status, by_status_view_method, by_charset, latency = children
        by_status.inc()
        by_status_view_method.inc()
        if by_charset is not None:
            by_charset.inc()
        if getattr(response, "streaming", False):
            self.metrics.responses_streaming.inc()
        if hasattr(response, "content"):
            self.metrics.responses_body_bytes.observe(len(response.content))
        started = getattr(request, "prometheus_after_middleware_event", None)
        if started is not None:
            latency.observe(time.perf_counter() - started)
        else:
            self.metrics.requests_unknown_latency.inc()
        return response

    def _response_children_for(
        self, request: HttpRequest, response: Any, key: tuple[str, str, str, str | None]
    ) -> _ResponseChildren:
        status, view, method, charset = key
        m = self.metrics
        children = (
            self.label_metric(m.responses_by_status, request, response, status=status),
            self.label_metric(
                m.responses_by_status_view_method, request, response, status=status, view=view, method=method
            ),
            None if charset is None else self.label_metric(m.responses_by_charset, request, response, charset=charset),
            self.label_metric(m.requests_latency_by_view_method, request, response, view=view, method=method),
        )
        return metrics.remember_child(self._response_children, key, children)  # type: ignore[no-any-return]


class _ProcessRegistry:
    """The default registry as one collector (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class _ScrapeTimeState:
    def collect(self) -> Iterator[Metric]:
        from gateway_project.observability import breaker_of, current_runtime

        try:
            runtime = current_runtime()
            plan = runtime.plan
            states = {name: str(breaker_of(runtime, svc).snapshot().state) for name, svc in plan.services.items()}
        except Exception:  # a scrape must answer even when the plan cannot load
            logger.warning("metrics: could not read breaker states", exc_info=True)
            return
        yield metrics.breaker_state_family(states)
        targets = ((e.name, e.p99_target_s) for e in plan.endpoints)
        yield metrics.latency_target_family(targets)


def metrics_view(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ProcessRegistry())
    registry.register(_ScrapeTimeState())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
