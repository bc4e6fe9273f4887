"""The lean lane (``gateway_project.api_lane``): aggregate routes answered as Django's
handler would answer them, every other request handed to Django's handler.

Called at the WSGI level, as gunicorn calls ``gateway_project.wsgi.application`` (the
test client goes through Django's handler and would never see the lane)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.signals import request_finished
from django.test import RequestFactory
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

import gateway_project.wsgi as wsgi
from gateway_project.api_lane import ApiLane
from orchestration.observability import tracing
from tests.support.configured import configured
from tests.support.fake_downstream import FakeDownstream, start_fake_downstream, stop_fake_downstream
from tests.support.spans import record_spans

LANE = wsgi.application
assert isinstance(LANE, ApiLane)
VARYING = {"x-request-id", "traceparent"}  # a fresh value per request, on either path


def document(base_url: str) -> dict[str, Any]:
    cart = {"id": "cart", "service": "shop", "stage": 1, "method": "GET", "path": "/carts/{{ request.path.cart_id }}"}
    return {
        "version": 1,
        "layer": {"name": "Lane", "base_path": "/v1/lane", "auth": {"type": "none"}},
        "services": {"shop": {"base_url": base_url, "timeout_ms": 1000}},
        "endpoints": [
            {
                "name": "cart",
                "method": "GET",
                "path": "/carts/{cart_id}",
                "calls": [cart],
                "response": {"cart": "{{ cart }}"},
            },
            {
                "name": "by-body",
                "method": "POST",
                "path": "/carts",
                "calls": [{**cart, "path": "/carts/{{ request.body.cartId }}"}],
                "response": {"cart": "{{ cart }}"},
            },
        ],
    }


@pytest.fixture
def shop(db: None) -> Iterator[FakeDownstream]:
    fake = start_fake_downstream({"*": (200, {"items": [1, 2]})})
    try:
        with configured(document(fake.url), "shop"):
            yield fake
    finally:
        stop_fake_downstream(fake)


class DjangoSpy:
    """Django's handler behind the lane, counting the requests the lane hands it."""

    def __init__(self, handler: Any) -> None:
        self.handler, self.calls = handler, 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        self.calls += 1
        return self.handler(environ, start_response)


@pytest.fixture
def django_spy(monkeypatch: pytest.MonkeyPatch) -> DjangoSpy:
    spy = DjangoSpy(LANE._django)
    monkeypatch.setattr(LANE, "_django", spy)
    return spy


def environ(method: str, path: str, body: dict[str, Any] | None = None, **extra: str) -> dict[str, Any]:
    factory = RequestFactory()
    if body is None:
        return dict(factory.generic(method, path, **extra).environ)
    return dict(factory.generic(method, path, json.dumps(body), "application/json", **extra).environ)


def serve(app: Any, env: dict[str, Any]) -> tuple[str, dict[str, str], bytes]:
    """Status, headers (names lower-cased) and body of one WSGI call; the body is closed
    as gunicorn closes it (which sends ``request_finished``)."""
    started: list[Any] = []
    result = app(env, lambda status, headers, exc_info=None: started.append((status, headers)))
    try:
        body = b"".join(result)
    finally:
        result.close()
    status, headers = started[0]
    return status, {name.lower(): value for name, value in headers}, body


def comparable(answer: tuple[str, dict[str, str], bytes]) -> tuple[str, dict[str, str], Any]:
    status, headers, body = answer
    parsed = json.loads(body) if headers.get("content-type", "").startswith("application/json") else body
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
        parsed["error"].pop("requestId", None)
    return status, {name: value for name, value in headers.items() if name not in VARYING}, parsed


REQUESTS = [
    pytest.param("GET", "/v1/lane/carts/c-1", None, {}, id="served"),
    pytest.param("POST", "/v1/lane/carts", {"cartId": "c-2"}, {}, id="served-from-body"),
    pytest.param("POST", "/v1/lane/carts", {"cartId": None}, {}, id="400-path-hole"),
    pytest.param("POST", "/v1/lane/carts", None, {"CONTENT_TYPE": "application/json"}, id="400-no-body"),
    pytest.param("GET", "/v1/lane/nowhere", None, {}, id="404-envelope"),
    pytest.param("DELETE", "/v1/lane/carts/c-1", None, {}, id="405"),
    pytest.param("GET", "/v1/lane/carts/c-1", None, {"HTTP_HOST": "evil.example"}, id="400-disallowed-host"),
]


@pytest.mark.parametrize(("method", "path", "body", "extra"), REQUESTS)
def test_an_aggregate_request_gets_through_the_lane_what_django_answers(
    shop: FakeDownstream, django_spy: DjangoSpy, method: str, path: str, body: Any, extra: dict[str, str]
) -> None:
    by_lane = serve(LANE, environ(method, path, body, **extra))
    assert django_spy.calls == 0, "the lane served it"
    by_django = serve(django_spy.handler, environ(method, path, body, **extra))
    assert comparable(by_lane) == comparable(by_django)
    assert by_lane[1]["x-request-id"], "every answer names its request"


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/healthz", {}),
        ("/metrics", {}),
        ("/openapi.json", {}),
        ("/admin/login/", {}),
        ("/static/admin/css/base.css", {}),
        ("/v1/lane/carts/c-1", {"SCRIPT_NAME": "/prefix"}),
    ],
)
def test_every_other_request_goes_to_django(
    shop: FakeDownstream, django_spy: DjangoSpy, path: str, extra: dict[str, str]
) -> None:
    env = environ("GET", path)
    env.update(extra)
    serve(LANE, env)
    assert django_spy.calls == 1


def span_tree(exporter: InMemorySpanExporter) -> list[tuple[Any, ...]]:
    """The finished spans as what an operator reads of them: name, kind, parent's name,
    attributes and status (ids and times differ from request to request)."""
    finished = exporter.get_finished_spans()
    names = {span.context.span_id: span.name for span in finished}
    tree = [
        (
            span.name,
            span.kind,
            names.get(span.parent.span_id) if span.parent else None,
            dict(span.attributes or {}),
            span.status.status_code,
        )
        for span in finished
    ]
    exporter.clear()
    return sorted(tree, key=repr)


def test_while_spans_are_recorded_the_lane_records_the_spans_django_would(
    shop: FakeDownstream, django_spy: DjangoSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = record_spans(monkeypatch)
    assert tracing.spans_recorded()
    by_lane = serve(LANE, environ("GET", "/v1/lane/carts/c-1"))
    lane_spans = span_tree(exporter)
    assert django_spy.calls == 0, "the lane served it"
    by_django = serve(django_spy.handler, environ("GET", "/v1/lane/carts/c-1"))
    assert comparable(by_lane) == comparable(by_django)
    assert by_lane[0].startswith("200")
    assert lane_spans == span_tree(exporter)
    (server,) = [span for span in lane_spans if span[1] is SpanKind.SERVER]
    assert server[0] == "GET ^(?P<path>[\\s\\S]*)$"  # the instrumentation's name: method and route
    assert [span[2] for span in lane_spans if span is not server] == [server[0]], "one attempt, the server's child"


def test_a_lane_request_counts_in_django_prometheus_under_its_view_and_finishes(shop: FakeDownstream) -> None:
    labels = {"view": "aggregate", "transport": "http", "method": "GET"}
    name = "django_http_requests_total_by_view_transport_method_total"
    before = REGISTRY.get_sample_value(name, labels) or 0.0
    finished: list[Any] = []

    def count(sender: Any, **kwargs: Any) -> None:
        finished.append(sender)

    request_finished.connect(count)
    try:
        status, _, _ = serve(LANE, environ("GET", "/v1/lane/carts/c-1"))
    finally:
        request_finished.disconnect(count)
    assert status.startswith("200")
    assert REGISTRY.get_sample_value(name, labels) == before + 1
    assert len(finished) == 1, "closing the answer sends request_finished, as Django's handler does"
    assert shop.hits
