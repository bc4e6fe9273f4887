"""/metrics: our series, django-prometheus's, and state read at scrape time.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its values
to files and this view, in whichever worker answers, merges all of them, so one
scrape sees the whole host. Breaker states and latency targets are read from
the shared breaker store and the served plan at scrape time (see
``orchestration.observability.metrics``).

``PrometheusAfterMiddleware`` here is django-prometheus's, with its label children
remembered (same series, same counts); settings list it in place of the original.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, HttpResponse
from django_prometheus import middleware as django_prometheus_middleware
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.metrics_core import Metric

from orchestration.observability import metrics

logger = logging.getLogger(__name__)


class PrometheusAfterMiddleware(django_prometheus_middleware.PrometheusAfterMiddleware):  # type: ignore[misc]
    """django-prometheus's per-view middleware, writing the same series, with two changes
    made in ``label_metric`` (the hook django-prometheus provides for subclasses):

    - a method outside the standard ones is labelled ``"other"`` everywhere (upstream
      writes ``<invalid method>`` in some series and the raw method in its latency
      histogram: a new series per method a client invents);
    - the label children it asks for on every request are remembered:
      ``metric.labels(**labels)`` validates the names and takes a lock on every call,
      six times per request, for the same few label sets.

    Views are the URLconf's names (``<unnamed view>`` when none matched), never a path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._children: dict[tuple[Any, ...], Any] = {}

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
