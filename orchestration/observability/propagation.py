"""What of a client's trace context crosses the gateway: its ``traceparent``, nothing else.

The contract: every downstream call carries our own W3C ``traceparent``, a child
of the client's when it sent a valid one, and no other client header reaches a
downstream unless a template or ``bearer_forward`` puts it there. OpenTelemetry's
default propagators (``tracecontext,baggage``, or whatever ``OTEL_PROPAGATORS``
names) carry more: the client's ``tracestate`` is kept in the extracted parent
and copied into our spans by the sampler, and its ``baggage`` is written back
as it came, so any client could put text of its choosing into every downstream
request. ``TraceparentPropagator`` reads and writes ``traceparent`` alone; it is
installed as the process's only propagator (``tracing.configure_tracing``).
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"


class _TraceparentOnly(Getter[CarrierT]):
    """The carrier as the W3C propagator sees it: without ``tracestate``."""

    def __init__(self, inner: Getter[CarrierT]) -> None:
        self._inner = inner

    def get(self, carrier: CarrierT, key: str) -> list[str] | None:
        return self._inner.get(carrier, key) if key == TRACEPARENT else None

    def keys(self, carrier: CarrierT) -> list[str]:
        return [key for key in self._inner.keys(carrier) if key == TRACEPARENT]


class TraceparentPropagator(TextMapPropagator):
    """W3C trace context without ``tracestate``, and no baggage."""

    def __init__(self) -> None:
        self._w3c = TraceContextTextMapPropagator()

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        return self._w3c.extract(carrier, context, _TraceparentOnly(getter))

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        written: dict[str, str] = {}
        self._w3c.inject(written, context)
        if TRACEPARENT in written:
            setter.set(carrier, TRACEPARENT, written[TRACEPARENT])

    @property
    def fields(self) -> set[str]:
        return {TRACEPARENT}
