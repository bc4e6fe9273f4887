"""Spans recorded in memory for a test, on the process-wide provider the gateway installed."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def record_spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """An exporter receiving every span finished from now on; ``monkeypatch`` removes its
    processor afterwards (while a provider has none, requests build no span:
    tests/observability/test_tracing_unrecorded.py)."""
    provider = trace.get_tracer_provider()
    assert hasattr(provider, "add_span_processor"), "ObservabilityConfig.ready installs the SDK provider"
    monkeypatch.setattr(provider._active_span_processor, "_span_processors", ())  # type: ignore[attr-defined]
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
