"""OpenTelemetry for the gateway: one trace per request, a span per downstream attempt.

Why a tracer provider is always installed, even with no exporter: the contract
sends W3C ``traceparent`` on every downstream call and the logs carry the
trace id, both of which need real (sampled) span contexts. Spans only leave the
process when an OTLP endpoint is configured through the standard variables
(``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
``OTEL_TRACES_EXPORTER=otlp``); ``OTEL_TRACES_EXPORTER=none`` or
``OTEL_SDK_DISABLED=true`` turn tracing off entirely.

Attempt spans are written after the fact from the engine's observer (it reports
each attempt once it is over, with its duration), so they carry exact start and
end times without the engine knowing about OpenTelemetry.

While the provider has no span processor (no exporter configured, nothing added
since) no span is built at all: a span would go nowhere. The request still gets
the span context the SDK would have given its server span
(``start_unrecorded_span``, used by ``gateway_project.observability.RequestTraceMiddleware``):
the incoming ``traceparent``'s trace id or a new one, a new span id, and the
**sampled flag the configured sampler decides** (``OTEL_TRACES_SAMPLER``, default
parent-based always-on: sampled unless the caller said otherwise). The flag is
kept rather than cleared because it travels downstream in ``traceparent``: a
downstream service with a parent-based sampler records its own spans only when
it is set, so "not sampled because this gateway keeps nothing" would switch their
tracing off. A sampler that drops while there is no processor was measured and
not kept: it forwards "not sampled" for that reason, and the instrumentation's
remaining work (URL resolve, attributes for its metrics, three absolute-URL
builds) kept most of the cost. Attempt spans are skipped the same way
(``record_attempt_span``), and the propagation headers are computed once per
request context, not per attempt (``_propagation_headers``). As soon as a
processor is installed, everything is recorded as before.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping

import httpx
from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from orchestration.observability.propagation import TraceparentPropagator

logger = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "orchestration-gateway"
TRACER_NAME = "orchestration.gateway"

_lock = threading.Lock()
_provider: TracerProvider | None = None


def tracing_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or _traces_exporter(environ) == "none"


def exporter_wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Export only when the operator named an endpoint or asked for OTLP."""
    if tracing_disabled(environ):
        return False
    if _traces_exporter(environ) == "otlp":
        return True
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def _traces_exporter(environ: Mapping[str, str]) -> str:
    return environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()


def configure_tracing(
    *, extra_processors: Iterable[SpanProcessor] = (), environ: Mapping[str, str] = os.environ
) -> TracerProvider | None:
    """Install the process's tracer provider once (later calls return it). Call
    after gunicorn forks: the batch exporter's worker must live in the worker.
    The propagator is ``traceparent`` alone, whatever ``OTEL_PROPAGATORS`` says: a
    client's ``tracestate`` and ``baggage`` never reach a downstream (``propagation``)."""
    global _provider
    with _lock:
        if _provider is not None or tracing_disabled(environ):
            return _provider
        resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", DEFAULT_SERVICE_NAME)})
        provider = TracerProvider(resource=resource)
        if exporter_wanted(environ):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            logger.info("tracing: exporting spans over OTLP/HTTP")
        for processor in extra_processors:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        propagate.set_global_textmap(TraceparentPropagator())
        _provider = provider
        return provider


def instrument_httpx() -> None:
    """Spans and ``traceparent`` for every httpx request made on httpx's own transports."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


_last_injected: tuple[Context, object, tuple[tuple[str, str], ...]] | None = None


def _propagation_headers() -> tuple[tuple[str, str], ...]:
    """What the configured propagators write for the current context, computed once
    per context: a request's attempts (its greenlets share the request's context
    object) get the same headers. Contexts are immutable and the last one is held,
    so the identity test cannot confuse two requests."""
    global _last_injected
    current = context_api.get_current()
    propagator = propagate.get_global_textmap()
    last = _last_injected
    if last is not None and last[0] is current and last[1] is propagator:
        return last[2]
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context=current)
    headers = tuple(carrier.items())
    _last_injected = (current, propagator, headers)
    return headers


class PropagatingTransport(httpx.BaseTransport):
    """Adds the current trace context (``traceparent``, and whatever else the
    configured propagators write) to each request before handing it on."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for name, value in _propagation_headers():
            request.headers[name] = value
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


def current_trace_id() -> str | None:
    """The active trace id as 32 hex digits, or None outside a sampled span."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def spans_recorded() -> bool:
    """True when a span started now would reach a span processor: an exporter is
    configured, or a processor was added to the provider since (tests do)."""
    provider = _provider
    return provider is not None and _has_processors(provider)


def start_unrecorded_span(parent_context: Context, name: str, kind: SpanKind = SpanKind.SERVER) -> trace.Span:
    """The span context the SDK's tracer would give a new span here, on a span that
    records nothing: the parent's trace id (else a new one from the provider's id
    generator), a new span id, the trace state and sampled flag the provider's
    sampler decides, the random-trace-id flag as the SDK sets it. Mirrors
    ``opentelemetry.sdk.trace.Tracer.start_span`` (SDK 1.45) minus the span object,
    its attributes and the processors' calls, for when no processor would receive it.

    Why the sampler still decides the flag: the flag goes downstream in
    ``traceparent``, and a downstream service with a parent-based sampler records
    its own spans only when it is set. Forwarding "not sampled" because this
    process keeps no spans would silently switch their tracing off."""
    if _provider is None:
        raise RuntimeError("start_unrecorded_span needs the tracer provider (configure_tracing)")
    provider = _provider
    parent = trace.get_current_span(parent_context).get_span_context()
    if parent.is_valid:
        trace_id = parent.trace_id
        random_trace_id = parent.trace_flags.random_trace_id
    else:
        trace_id = provider.id_generator.generate_trace_id()
        random_trace_id = provider.id_generator.is_trace_id_random()
    result = provider.sampler.should_sample(parent_context, trace_id, name, kind)
    flags = TraceFlags.SAMPLED if result.decision.is_sampled() else TraceFlags.DEFAULT  # type: ignore[no-untyped-call]
    if random_trace_id:
        flags |= TraceFlags.RANDOM_TRACE_ID
    context = SpanContext(
        trace_id,
        provider.id_generator.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(flags),
        trace_state=result.trace_state,
    )
    return NonRecordingSpan(context)


def _has_processors(provider: TracerProvider) -> bool:
    """True unless the SDK provider's processor list is known to be empty."""
    processors = getattr(getattr(provider, "_active_span_processor", None), "_span_processors", None)
    return processors is None or len(processors) > 0


@functools.cache
def _tracer() -> trace.Tracer:
    """One tracer per process: ``get_tracer`` per attempt cost as much as the span.
    Before a provider is installed this is OpenTelemetry's proxy tracer, which
    follows the provider once it is set."""
    return trace.get_tracer(TRACER_NAME)


def record_attempt_span(
    *,
    endpoint: str,
    service: str,
    call_id: str,
    attempt: int,
    outcome: str,
    duration_s: float,
    status: int | None,
) -> None:
    """A span for one finished downstream attempt, child of the current (request) span.

    Not built at all while the installed provider has no span processor (no
    exporter configured, nothing added since): such a span would go nowhere, and
    building it was ~8 % of a request's CPU. A processor added later (an
    exporter, a test's in-memory one) gets every attempt span from then on."""
    if _provider is not None and not _has_processors(_provider):
        return
    end_ns = time.time_ns()
    start_ns = end_ns - int(max(0.0, duration_s) * 1e9)
    tracer = _tracer()
    attributes: dict[str, str | int] = {
        "gateway.endpoint": endpoint,
        "gateway.service": service,
        "gateway.call_id": call_id,
        "gateway.attempt": attempt,
        "gateway.outcome": outcome,
    }
    if status is not None:
        attributes["http.response.status_code"] = status
    span = tracer.start_span(
        f"attempt {service}/{call_id}", kind=SpanKind.INTERNAL, start_time=start_ns, attributes=attributes
    )
    if outcome != "ok":
        span.set_status(Status(StatusCode.ERROR, outcome))
    span.end(end_time=end_ns)
