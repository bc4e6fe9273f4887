"""Engine-side observability pieces, without Django or a network."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from orchestration.observability import access_log, metrics
from orchestration.observability.recent_stats import (
    BUCKET_S,
    InProcessStatsSink,
    RecentStats,
    endpoint_key,
    p95_from_buckets,
)
from orchestration.observability.tracing import exporter_wanted, tracing_disabled
from orchestration.observer import BreakerTransition


@pytest.mark.parametrize(
    ("kind", "status", "label"),
    [
        ("ok", 200, "ok"),
        ("bad_status", 503, "5xx"),
        ("bad_status", 404, "4xx"),
        ("bad_status", 429, "429"),
        ("timeout", None, "timeout"),
        ("connect_error", None, "connect"),
        ("circuit_open", None, "circuit_open"),
        ("bulkhead_full", None, "bulkhead_full"),
        ("misconfigured", None, "other"),
    ],
)
def test_outcome_labels_are_a_closed_set(kind: str, status: int | None, label: str) -> None:
    assert metrics.outcome_label(kind, status) == label


def test_recent_stats_error_rate_p95_and_last_times() -> None:
    now = [1_000_000.0]
    stats = RecentStats(InProcessStatsSink(), clock=lambda: now[0])
    for _ in range(19):
        stats.record(service="cart", outcome="ok", duration_s=0.02)
    stats.record(service="cart", outcome="5xx", duration_s=0.9)
    stats.record(service="cart", outcome="circuit_open", duration_s=0.0)  # skipped: not a service answer
    now[0] += 5
    stats.flush()

    read = stats.sink.read(["cart", "tax"], now[0])

    cart = read["cart"]
    assert (cart.attempts, cart.errors, cart.error_rate) == (20, 1, 0.05)
    assert cart.p95_s is not None and 0.01 < cart.p95_s <= 0.02
    assert cart.last_success_at == 1_000_000.0 and cart.last_failure_at == 1_000_000.0
    assert read["tax"].error_rate is None and read["tax"].p95_s is None
    assert stats.sink.read(["cart"], now[0] + 400)["cart"].attempts == 0  # out of the 5-minute window


def test_recent_stats_per_endpoint_apart_from_services() -> None:
    """An endpoint's answers: a 5xx fails, a client's 4xx does not; a service of the same
    name is another series."""
    now = [1_000_000.0]
    stats = RecentStats(InProcessStatsSink(), clock=lambda: now[0])
    for status in (200, 200, 200, 404, 502):
        stats.record_request(endpoint="cart", status=status, duration_s=0.03)
    stats.record(service="cart", outcome="ok", duration_s=0.01)
    stats.flush()

    read = stats.sink.read([endpoint_key("cart"), "cart"], now[0])

    endpoint = read[endpoint_key("cart")]
    assert (endpoint.attempts, endpoint.errors, endpoint.error_rate) == (5, 1, 0.2)
    assert endpoint.p50_s is not None and 0.02 < endpoint.p50_s <= 0.035
    assert (read["cart"].attempts, read["cart"].errors) == (1, 0)


def test_in_process_stats_keep_only_the_window() -> None:
    now = [1_000_000.0]
    stats = RecentStats(InProcessStatsSink(), clock=lambda: now[0])
    for _ in range(200):  # 200 ten-second buckets: ~33 minutes of traffic
        stats.record_request(endpoint="cart", status=200, duration_s=0.01)
        stats.flush()
        now[0] += BUCKET_S
    assert len(stats.sink._buckets) <= 300 // BUCKET_S + 2  # type: ignore[attr-defined]
    recent = stats.sink.read([endpoint_key("cart")], now[0])[endpoint_key("cart")]
    assert recent.attempts == 29  # the 29 buckets before the current (empty) one


def test_recent_transitions_newest_first() -> None:
    stats = RecentStats(InProcessStatsSink())
    stats.record_transition(BreakerTransition("cart", "closed", "open", "5 failures within 60s", 1.0))
    stats.record_transition(BreakerTransition("cart", "open", "half_open", "open for 30s", 31.0))
    assert [(t.from_state, t.to_state) for t in stats.sink.transitions("cart", 10)] == [
        ("open", "half_open"),
        ("closed", "open"),
    ]


def test_p95_interpolates_like_histogram_quantile() -> None:
    counts = [0] * 19
    counts[3] = 100  # all in (0.005, 0.01]
    assert p95_from_buckets(counts) == pytest.approx(0.005 + 0.005 * 0.95)


def test_log_lines_inside_a_request_carry_its_ids(caplog: pytest.LogCaptureFixture) -> None:
    handler_filter = access_log.RequestContextFilter()
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "inside", None, None)
    access_log.bind(request_id="req-1", trace_id="ab" * 16)
    try:
        handler_filter.filter(record)
    finally:
        access_log.unbind()
    outside = logging.LogRecord("x", logging.INFO, __file__, 1, "outside", None, None)
    handler_filter.filter(outside)
    assert (record.request_id, record.trace_id) == ("req-1", "ab" * 16)
    assert not hasattr(outside, "request_id")


def test_exporter_only_when_configured() -> None:
    assert exporter_wanted({}) is False
    assert exporter_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) is True
    assert exporter_wanted({"OTEL_TRACES_EXPORTER": "otlp"}) is True
    assert exporter_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}) is False
    assert tracing_disabled({"OTEL_TRACES_EXPORTER": "none"}) is True


def test_attempt_spans_are_built_only_when_a_processor_receives_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from orchestration.observability import tracing

    provider = TracerProvider()
    monkeypatch.setattr(tracing, "_provider", provider)
    monkeypatch.setattr(tracing, "_tracer", lambda: provider.get_tracer(tracing.TRACER_NAME))
    built: list[str] = []
    real_tracer = tracing._tracer

    def counting_tracer():  # type: ignore[no-untyped-def]
        built.append("tracer")
        return real_tracer()

    monkeypatch.setattr(tracing, "_tracer", counting_tracer)
    attempt = {"endpoint": "e", "service": "s", "call_id": "c", "attempt": 1, "duration_s": 0.01}
    tracing.record_attempt_span(**attempt, outcome="ok", status=200)
    assert built == []  # no processor: nothing built

    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.record_attempt_span(**attempt, outcome="timeout", status=None)
    (span,) = exporter.get_finished_spans()
    assert span.name == "attempt s/c"
    assert span.attributes is not None and span.attributes["gateway.outcome"] == "timeout"


class _CountingSink(InProcessStatsSink):
    def __init__(self) -> None:
        super().__init__()
        self.adds = 0

    def add(self, bucket: int, deltas: Any, last: Any) -> None:
        self.adds += 1
        super().add(bucket, deltas, last)


def _eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "condition not reached within 5 s"
        time.sleep(0.001)


def test_the_background_flush_rests_while_nothing_is_recorded_and_flushes_the_next_record() -> None:
    """An idle worker's own CPU: with nothing to flush the flusher waits for a record, not a timer."""
    sink = _CountingSink()
    stats = RecentStats(sink)
    stats.start_background_flush(interval_s=0.001)
    try:
        _eventually(lambda: stats._on_record is not None)  # resting
        time.sleep(0.05)  # ~50 intervals
        assert sink.adds == 0

        stats.record(service="cart", outcome="ok", duration_s=0.02)
        assert sink.adds == 0  # the recording request does not flush: the woken flusher does
        _eventually(lambda: sink.read(["cart"], time.time())["cart"].attempts == 1)
    finally:
        stats.stop_background_flush()
    assert stats._flusher is not None and not stats._flusher.is_alive()  # stop ends a rest
