"""What a user sees of tracing while no span processor is installed (the default:
no OTLP exporter configured), and that a processor added later records as before.

Without a processor the request's span is not built (``RequestTraceMiddleware``),
yet every downstream call carries a ``traceparent`` of the request's trace, an
incoming one is continued, and the log lines and the access line carry the trace id.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from django.core.management import call_command
from django.test import RequestFactory
from opentelemetry import context, propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind

from orchestration.observability import tracing
from tests.e2e.ops_config import ops_config
from tests.support import fake_downstream as fake_downstream_support

fake_downstream = fake_downstream_support.fake_downstream  # the shared fixture, requested by name below

pytestmark = pytest.mark.django_db(transaction=True)

INCOMING_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def _processors(provider: TracerProvider) -> object:
    return provider._active_span_processor  # type: ignore[attr-defined]


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> TracerProvider:
    """The installed provider with no span processor for the test (another test may
    have added one to the process-wide provider), restored afterwards."""
    installed = trace.get_tracer_provider()
    assert isinstance(installed, TracerProvider), "ObservabilityConfig.ready installs the SDK provider"
    monkeypatch.setattr(_processors(installed), "_span_processors", ())
    assert not tracing.spans_recorded()
    return installed


@pytest.fixture
def access_lines() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("gateway.access")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def _serve(config_yaml: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gateway_project import wiring

    path = tmp_path / "gateway.yaml"
    path.write_text(config_yaml, encoding="utf-8")
    call_command("gateway", "import", str(path))
    wiring.runtime_holder().invalidate()
    runtime = wiring.runtime_holder().current()
    for name in runtime.plan.services:
        runtime.pool.breaker(name).reset()


def _downstreams(fake_downstream, tmp_path):  # type: ignore[no-untyped-def]
    cart = fake_downstream({"/carts/1": (200, {"items": [1]})})
    shipping = fake_downstream({"/estimate": (200, {"options": []})})
    _serve(ops_config(cart=cart.url, shipping=shipping.url), tmp_path)
    return cart, shipping


def _received(cart, shipping) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    headers = [*cart.headers["/carts/1"], *shipping.headers["/estimate"]]
    assert len(headers) == 2
    parsed = [TRACEPARENT.match(h.get("traceparent", "")) for h in headers]
    assert all(parsed), headers
    return [m.groups() for m in parsed if m]


def test_no_processor_continues_the_incoming_trace_downstream_and_in_the_access_line(
    provider, fake_downstream, access_lines, client, tmp_path, monkeypatch
) -> None:
    from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware

    cart, shipping = _downstreams(fake_downstream, tmp_path)
    built: list[object] = []
    monkeypatch.setattr(_DjangoMiddleware, "process_request", lambda self, request: built.append(request))

    response = client.get("/v1/summary", HTTP_TRACEPARENT=f"00-{INCOMING_TRACE_ID}-{INCOMING_SPAN_ID}-01")

    assert response.status_code == 200
    assert built == []  # no server span was built
    received = _received(cart, shipping)
    assert {trace_id for trace_id, _, _ in received} == {INCOMING_TRACE_ID}
    # the parent downstream sees is the gateway's own (unrecorded) span, one per request, still sampled
    assert len({span_id for _, span_id, _ in received}) == 1
    assert received[0][1] != INCOMING_SPAN_ID
    assert {int(flags, 16) & 0x01 for _, _, flags in received} == {1}
    (line,) = [r for r in access_lines if getattr(r, "endpoint", None) == "summary"]
    assert line.trace_id == INCOMING_TRACE_ID  # type: ignore[attr-defined]
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached after the request


def test_no_processor_without_traceparent_starts_one_sampled_trace_per_request(
    provider, fake_downstream, access_lines, client, tmp_path
) -> None:
    cart, shipping = _downstreams(fake_downstream, tmp_path)

    assert client.get("/v1/summary").status_code == 200
    first = _received(cart, shipping)
    cart.headers.clear()
    shipping.headers.clear()
    assert client.get("/v1/summary").status_code == 200
    second = _received(cart, shipping)

    for received in (first, second):
        assert len({(trace_id, span_id) for trace_id, span_id, _ in received}) == 1
        # sampled, as the SDK's span would be (default sampler), random-trace-id flag as the SDK sets it
        assert {flags for _, _, flags in received} == {"03"}
    assert first[0][0] != second[0][0]
    lines = [r for r in access_lines if getattr(r, "endpoint", None) == "summary"]
    assert [line.trace_id for line in lines] == [first[0][0], second[0][0]]  # type: ignore[attr-defined]


def test_no_processor_forwards_an_unsampled_incoming_decision(provider, fake_downstream, client, tmp_path) -> None:
    cart, shipping = _downstreams(fake_downstream, tmp_path)

    response = client.get("/v1/summary", HTTP_TRACEPARENT=f"00-{INCOMING_TRACE_ID}-{INCOMING_SPAN_ID}-00")

    assert response.status_code == 200
    assert {(trace_id, flags) for trace_id, _, flags in _received(cart, shipping)} == {(INCOMING_TRACE_ID, "00")}


def test_processor_added_after_start_records_the_server_span_and_attempts(
    provider, fake_downstream, client, tmp_path
) -> None:
    cart, shipping = _downstreams(fake_downstream, tmp_path)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # restored by the fixture
    assert tracing.spans_recorded()

    response = client.get("/v1/summary", HTTP_TRACEPARENT=f"00-{INCOMING_TRACE_ID}-{INCOMING_SPAN_ID}-01")

    assert response.status_code == 200
    finished = exporter.get_finished_spans()
    (server,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert format(server.context.trace_id, "032x") == INCOMING_TRACE_ID
    assert server.parent is not None and format(server.parent.span_id, "016x") == INCOMING_SPAN_ID
    attributes = dict(server.attributes or {})
    assert attributes["http.method"] == "GET" and attributes["http.status_code"] == 200
    assert attributes["http.route"]  # set in process_view: the view hook reached the instrumentation
    attempts = sorted(s.name for s in finished if s.name.startswith("attempt "))
    assert attempts == ["attempt cart/cart", "attempt shipping/ship"]
    received = _received(cart, shipping)
    assert {(trace_id, span_id) for trace_id, span_id, _ in received} == {
        (INCOMING_TRACE_ID, format(server.context.span_id, "016x"))
    }


def test_unrecorded_span_has_the_context_the_sdk_would_give() -> None:
    parent = trace.NonRecordingSpan(
        trace.SpanContext(
            int(INCOMING_TRACE_ID, 16),
            int(INCOMING_SPAN_ID, 16),
            is_remote=True,
            trace_flags=trace.TraceFlags(0x01),
            trace_state=trace.TraceState([("vendor", "x")]),
        )
    )
    for sampler in (None, ParentBased(ALWAYS_OFF)):
        provider = TracerProvider(sampler=sampler)
        for parent_context in (context.Context(), trace.set_span_in_context(parent)):
            expected = provider.get_tracer("t").start_span("GET", parent_context, kind=SpanKind.SERVER)
            expected_context = expected.get_span_context()
            original = tracing._provider
            tracing._provider = provider
            try:
                span = tracing.start_unrecorded_span(parent_context, "GET")
            finally:
                tracing._provider = original
            got = span.get_span_context()
            assert not span.is_recording()
            assert got.is_valid and got.span_id != expected_context.span_id
            assert (got.trace_flags, got.trace_state) == (expected_context.trace_flags, expected_context.trace_state)
            if parent_context:
                assert got.trace_id == expected_context.trace_id == int(INCOMING_TRACE_ID, 16)


def test_excluded_urls_match_the_instrumentations_test(settings) -> None:  # type: ignore[no-untyped-def]
    settings.ALLOWED_HOSTS = ["*"]
    from opentelemetry.instrumentation.django.middleware.otel_middleware import _DjangoMiddleware

    from gateway_project.observability import RequestTraceMiddleware

    middleware = RequestTraceMiddleware(lambda request: None)
    factory = RequestFactory()
    for path, host in [
        ("/healthz", "gw.example"),
        ("/readyz", "gw.example"),
        ("/metrics", "gw.example"),
        ("/static/app.css", "gw.example"),
        ("/v1/summary", "gw.example"),
        ("/v1/summary", "metrics.example"),
        ("/v1/cart/healthzz", "gw.example"),
    ]:
        request = factory.get(path, HTTP_HOST=host)
        full = _DjangoMiddleware._excluded_urls.url_disabled(request.build_absolute_uri("?"))
        assert middleware._excluded_request(request) is full, (path, host)


def test_propagation_headers_follow_the_current_context_and_propagator(monkeypatch: pytest.MonkeyPatch) -> None:
    def span(trace_id: int) -> trace.Span:
        return trace.NonRecordingSpan(trace.SpanContext(trace_id, 1, is_remote=False, trace_flags=trace.TraceFlags(1)))

    seen = []
    for trace_id in (1, 2, 2):
        token = context.attach(trace.set_span_in_context(span(trace_id)))
        try:
            seen.append(dict(tracing._propagation_headers())["traceparent"].split("-")[1])
        finally:
            context.detach(token)
    assert seen == [format(1, "032x"), format(2, "032x"), format(2, "032x")]

    class Fixed(propagate.textmap.TextMapPropagator):  # type: ignore[name-defined]
        def inject(self, carrier, context=None, setter=propagate.textmap.default_setter):  # type: ignore[no-untyped-def, name-defined]
            setter.set(carrier, "x-fixed", "1")

        def extract(self, carrier, context=None, getter=propagate.textmap.default_getter):  # type: ignore[no-untyped-def, name-defined]
            return context

        @property
        def fields(self):  # type: ignore[no-untyped-def]
            return {"x-fixed"}

    monkeypatch.setattr(propagate, "_HTTP_TEXT_FORMAT", Fixed())
    assert tracing._propagation_headers() == (("x-fixed", "1"),)
