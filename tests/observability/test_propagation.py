"""A client's trace context crosses the gateway as ``traceparent`` alone: its
``tracestate`` and ``baggage`` are neither kept nor written to a downstream."""

from __future__ import annotations

from opentelemetry import baggage, propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from orchestration.observability.propagation import TraceparentPropagator

CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
CLIENT_HEADERS = {
    "traceparent": f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01",
    "tracestate": "vendor=client-secret",
    "baggage": "userId=alice,role=admin",
}


def test_extract_keeps_the_client_trace_but_not_its_tracestate_or_baggage() -> None:
    context = TraceparentPropagator().extract(CLIENT_HEADERS)
    parent = trace.get_current_span(context).get_span_context()
    assert (format(parent.trace_id, "032x"), format(parent.span_id, "016x")) == (CLIENT_TRACE_ID, CLIENT_SPAN_ID)
    assert parent.is_remote and parent.trace_flags.sampled
    assert parent.trace_state == TraceState()
    assert baggage.get_all(context) == {}


def test_a_child_of_the_client_span_is_written_as_traceparent_only() -> None:
    propagator = TraceparentPropagator()
    span = TracerProvider().get_tracer("test").start_span("server", context=propagator.extract(CLIENT_HEADERS))
    context = baggage.set_baggage("userId", "alice", trace.set_span_in_context(span))
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    assert list(carrier) == ["traceparent"]
    version, trace_id, span_id, flags = carrier["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", CLIENT_TRACE_ID, "01")
    assert span_id not in (CLIENT_SPAN_ID, "0" * 16)


def test_a_span_with_a_trace_state_of_its_own_still_writes_traceparent_only() -> None:
    own = SpanContext(
        int(CLIENT_TRACE_ID, 16), 0x1234, False, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")])
    )
    carrier: dict[str, str] = {}
    TraceparentPropagator().inject(carrier, trace.set_span_in_context(NonRecordingSpan(own)))
    assert carrier == {"traceparent": f"00-{CLIENT_TRACE_ID}-0000000000001234-01"}


def test_nothing_is_written_outside_a_trace() -> None:
    carrier: dict[str, str] = {}
    TraceparentPropagator().inject(carrier, baggage.set_baggage("userId", "alice"))
    assert carrier == {}


def test_the_process_propagates_with_it() -> None:
    """``configure_tracing`` (run by ``ObservabilityConfig.ready``) installs it, whatever
    ``OTEL_PROPAGATORS`` would have chosen."""
    assert isinstance(propagate.get_global_textmap(), TraceparentPropagator)
    assert propagate.get_global_textmap().fields == {"traceparent"}
