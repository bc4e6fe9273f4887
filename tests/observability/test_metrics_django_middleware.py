"""``orchestration.web.ops_metrics.PrometheusAfterMiddleware`` writes exactly what
django-prometheus's own middleware writes (it only remembers label children)."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory
from django_prometheus.middleware import PrometheusAfterMiddleware as OriginalAfterMiddleware
from prometheus_client import REGISTRY

from orchestration.web.ops_metrics import PrometheusAfterMiddleware


class _Match:
    def __init__(self, view_name: str) -> None:
        self.view_name = view_name


def _django_samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in REGISTRY.collect()
        if family.name.startswith("django_http")
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _serve(middleware: Any, request: HttpRequest, response: HttpResponse) -> None:
    middleware.process_request(request)
    middleware.process_view(request, None)
    middleware.process_response(request, response)


def _delta(middleware: Any, traffic: list[tuple[HttpRequest, HttpResponse]]) -> dict[Any, float]:
    before = _django_samples()
    for request, response in traffic:
        _serve(middleware, request, response)
    after = _django_samples()
    return {key: value - before.get(key, 0.0) for key, value in after.items() if value != before.get(key, 0.0)}


def _traffic() -> list[tuple[HttpRequest, HttpResponse]]:
    factory = RequestFactory()
    traffic = []
    for method, path, view, status in [
        ("post", "/v1/checkout/summary", "aggregate", 200),
        ("post", "/v1/checkout/summary", "aggregate", 200),
        ("get", "/v1/cart/1", "aggregate", 502),
        ("get", "/metrics", "metrics", 200),
    ]:
        request = getattr(factory, method)(path, data={} if method == "get" else b"{}", content_type="application/json")
        request.resolver_match = _Match(view)
        traffic.append((request, JsonResponse({"ok": True}, status=status)))
    ajax = factory.get("/healthz", headers={"X-Requested-With": "XMLHttpRequest"})
    ajax.resolver_match = _Match("healthz")
    traffic.append((ajax, HttpResponse("ok")))
    return traffic


@pytest.mark.parametrize("rounds", [1, 3])
def test_same_series_and_counts_as_django_prometheus(rounds: int) -> None:
    ours = PrometheusAfterMiddleware(lambda request: HttpResponse())
    original = OriginalAfterMiddleware(lambda request: HttpResponse())

    for _ in range(rounds):  # later rounds are served from the remembered children
        expected = _delta(original, _traffic())
        seen = _delta(ours, _traffic())
        latency = "django_http_requests_latency_seconds_by_view_method_sum"
        assert {k: v for k, v in seen.items() if k[0] != latency} == {
            k: v for k, v in expected.items() if k[0] != latency
        }
        assert {k for k in seen if k[0] == latency} == {k for k in expected if k[0] == latency}
    assert (
        "django_http_responses_total_by_status_view_method_total",
        (("method", "POST"), ("status", "200"), ("view", "aggregate")),
    ) in seen


def _called(middleware_class: Any, answer: HttpResponse, rounds: int) -> dict[Any, float]:
    """Serve requests through a middleware's ``__call__``, as Django's chain does."""
    middleware = middleware_class(lambda request: answer)
    before = _django_samples()
    for _ in range(rounds):
        assert middleware(RequestFactory().post("/v1/checkout/summary", b"{}", "application/json")) is answer
    after = _django_samples()
    return {key: value - before.get(key, 0.0) for key, value in after.items() if value != before.get(key, 0.0)}


def test_before_middleware_writes_what_django_prometheus_writes() -> None:
    from django_prometheus.middleware import PrometheusBeforeMiddleware as OriginalBeforeMiddleware

    from orchestration.web.ops_metrics import PrometheusBeforeMiddleware

    expected = _called(OriginalBeforeMiddleware, HttpResponse("ok"), rounds=3)
    seen = _called(PrometheusBeforeMiddleware, HttpResponse("ok"), rounds=3)
    latency = "django_http_requests_latency_including_middlewares_seconds_sum"
    assert {k: v for k, v in seen.items() if k[0] != latency} == {k: v for k, v in expected.items() if k[0] != latency}
    assert seen[("django_http_requests_before_middlewares_total", ())] == 3
    assert seen[("django_http_responses_before_middlewares_total", ())] == 3
    assert seen[("django_http_requests_latency_including_middlewares_seconds_count", ())] == 3


def test_after_middleware_counts_https_like_django_prometheus() -> None:
    factory = RequestFactory()
    ours = PrometheusAfterMiddleware(lambda request: HttpResponse())
    original = OriginalAfterMiddleware(lambda request: HttpResponse())

    def traffic() -> list[tuple[HttpRequest, HttpResponse]]:
        secure = factory.get("/v1/cart/1", secure=True)
        secure.resolver_match = _Match("aggregate")
        return [(secure, JsonResponse({}, status=200))]

    expected = _delta(original, traffic())
    seen = _delta(ours, traffic())
    latency = "django_http_requests_latency_seconds_by_view_method_sum"
    assert {k: v for k, v in seen.items() if k[0] != latency} == {k: v for k, v in expected.items() if k[0] != latency}
    assert ("django_http_requests_total_by_transport_total", (("transport", "https"),)) in seen


def test_after_middleware_labels_an_invented_method_other() -> None:
    """Where django-prometheus writes ``<invalid method>`` (or the raw method in its
    latency histogram), every series here says "other". (Upstream's middleware is not
    run here: its series would stay in this process's registry for other tests to see.)"""
    brew = RequestFactory().generic("BREW", "/v1/cart/1")
    brew.resolver_match = _Match("aggregate")
    seen = _delta(PrometheusAfterMiddleware(lambda request: HttpResponse()), [(brew, JsonResponse({}, status=405))])
    methods = {value for _, labels in seen for name, value in labels if name == "method"}
    assert methods == {"other"}
    assert ("django_http_requests_total_by_method_total", (("method", "other"),)) in seen
    assert (
        "django_http_responses_total_by_status_view_method_total",
        (("method", "other"), ("status", "405"), ("view", "aggregate")),
    ) in seen
    assert (
        "django_http_requests_latency_seconds_by_view_method_count",
        (("method", "other"), ("view", "aggregate")),
    ) in seen
