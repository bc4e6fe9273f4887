"""Every Prometheus series the gateway writes itself (django-prometheus adds the HTTP basics).

Why these shapes:
- Durations are histograms with buckets dense around the latencies we expect
  (a few ms to a couple of seconds), so ``histogram_quantile`` gives usable
  P50/P95/P99 per endpoint and per downstream service.
- The downstream histogram is per attempt (retries are separate observations)
  and separate from the endpoint total, so "which service is slow" is one query.
- Outcomes are a small closed set (``OUTCOMES``); a failure kind the engine
  adds later maps to ``"other"`` instead of exploding the label space.
- Breaker state is *not* a gauge written here: breakers are shared through
  Redis, so the /metrics view reads the shared state at scrape time
  (``breaker_state_family``) — every worker and host then reports the truth,
  not the last transition it happened to see.

Under gunicorn the values go through ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client
picks its multiprocess value class at import when the variable is set).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase

REQUEST_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
    0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
DOWNSTREAM_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0,
)  # fmt: skip

OUTCOMES = ("ok", "4xx", "429", "5xx", "timeout", "connect", "bad_body", "circuit_open", "bulkhead_full", "other")
# Outcomes that count against a service's error rate (the breaker's failures).
ERROR_OUTCOMES = ("5xx", "timeout", "connect", "bad_body")
BREAKER_STATES = ("closed", "half_open", "open")  # ordered by severity: max() across hosts is the worst

request_duration = Histogram(
    "gateway_request_duration_seconds",
    "Total time to serve an aggregate request, per endpoint.",
    ["endpoint", "method"],
    buckets=REQUEST_BUCKETS_S,
)
requests_total = Counter(
    "gateway_requests_total",
    "Aggregate requests answered, per endpoint and HTTP status.",
    ["endpoint", "status"],
)
partial_responses = Counter(
    "gateway_partial_responses_total",
    "Aggregate responses served with partialData (an optional call failed).",
    ["endpoint"],
)
downstream_duration = Histogram(
    "gateway_downstream_duration_seconds",
    "Time of one downstream attempt, per service and call (retries observed separately).",
    ["service", "endpoint", "call"],
    buckets=DOWNSTREAM_BUCKETS_S,
)
downstream_attempts = Counter(
    "gateway_downstream_attempts_total",
    "Downstream attempts per service and outcome (ok, 4xx, 429, 5xx, timeout, connect, bad_body, "
    "circuit_open, bulkhead_full).",
    ["service", "outcome"],
)
breaker_transitions = Counter(
    "gateway_breaker_transitions_total",
    "Circuit breaker transitions observed by this process, per service.",
    ["service", "from_state", "to_state"],
)
cache_lookups = Counter(
    "gateway_cache_lookups_total",
    "Response cache lookups per endpoint; result is hit or miss.",
    ["endpoint", "result"],
)
rate_limit_rejections = Counter(
    "gateway_rate_limit_rejections_total",
    "Requests refused by a gateway rate limit, per scope (user, ip, endpoint, global).",
    ["scope"],
)
store_errors = Counter(
    "gateway_store_errors_total",
    "Shared-state store errors (Redis unreachable): the gateway fell back or failed open.",
    ["store"],
)


_enabled = True


def set_enabled(enabled: bool) -> None:
    """``GATEWAY_METRICS=off`` (read by ``gateway_project.wiring``): write no series per request."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


def outcome_label(kind: str, status: int | None = None) -> str:
    """Map an engine outcome kind (and downstream status) to the closed ``OUTCOMES`` set."""
    if kind == "ok":
        return "ok"
    if kind == "bad_status" and status is not None:
        if status == 429:
            return "429"
        return "5xx" if status >= 500 else "4xx"
    aliases = {"connect_error": "connect", "connection_error": "connect", "deadline": "timeout"}
    label = aliases.get(kind, kind)
    return label if label in OUTCOMES else "other"


_CHILDREN_KEPT = 4096  # label sets cached per series (bounded: endpoints and services come from the config)


def _child(metric: MetricWrapperBase, cache: dict[tuple[str, ...], Any], values: tuple[str, ...]) -> Any:
    """``metric.labels(*values)``, cached: ``labels`` validates and locks on every call,
    and the request path asks for the same few label sets over and over."""
    child = cache.get(values)
    if child is None:
        if len(cache) >= _CHILDREN_KEPT:
            cache.clear()
        child = cache[values] = metric.labels(*values)
    return child


_request_duration_children: dict[tuple[str, ...], Any] = {}
_requests_total_children: dict[tuple[str, ...], Any] = {}
_downstream_attempts_children: dict[tuple[str, ...], Any] = {}
_downstream_duration_children: dict[tuple[str, ...], Any] = {}


def observe_request(*, endpoint: str, method: str, status: int, duration_s: float, partial: bool) -> None:
    if not _enabled:
        return
    _child(request_duration, _request_duration_children, (endpoint, method)).observe(duration_s)
    _child(requests_total, _requests_total_children, (endpoint, str(status))).inc()
    if partial:
        partial_responses.labels(endpoint=endpoint).inc()


def observe_attempt(*, service: str, endpoint: str, call: str, outcome: str, duration_s: float) -> None:
    """One downstream attempt. Attempts that never touched the network (open
    breaker, full bulkhead) are counted but not timed: their ~0 s would drag the
    service's latency quantiles down exactly when it is failing."""
    if not _enabled:
        return
    _child(downstream_attempts, _downstream_attempts_children, (service, outcome)).inc()
    if outcome not in ("circuit_open", "bulkhead_full"):
        _child(downstream_duration, _downstream_duration_children, (service, endpoint, call)).observe(duration_s)


def observe_breaker_transition(*, service: str, from_state: str, to_state: str) -> None:
    if not _enabled:
        return
    breaker_transitions.labels(service=service, from_state=from_state, to_state=to_state).inc()


def observe_cache_lookup(*, endpoint: str, hit: bool) -> None:
    if not _enabled:
        return
    cache_lookups.labels(endpoint=endpoint, result="hit" if hit else "miss").inc()


def observe_rate_limit_rejection(*, scope: str) -> None:
    if not _enabled:
        return
    rate_limit_rejections.labels(scope=scope).inc()


def observe_store_error(*, store: str) -> None:
    if not _enabled:
        return
    store_errors.labels(store=store).inc()


def breaker_state_family(states: Mapping[str, str]) -> GaugeMetricFamily:
    """``gateway_breaker_state{service}``: 0 closed, 1 half_open, 2 open — read at scrape time."""
    family = GaugeMetricFamily(
        "gateway_breaker_state",
        "Circuit breaker state per service: 0 closed, 1 half_open, 2 open (shared state, read at scrape).",
        labels=["service"],
    )
    for service, state in sorted(states.items()):
        family.add_metric([service], float(BREAKER_STATES.index(state) if state in BREAKER_STATES else 0))
    return family


def latency_target_family(targets_s: Iterable[tuple[str, float]]) -> GaugeMetricFamily:
    """``gateway_endpoint_latency_target_seconds{endpoint}``: the P99 each endpoint is held to."""
    family = GaugeMetricFamily(
        "gateway_endpoint_latency_target_seconds",
        "P99 latency target per endpoint (alerting threshold), from the configuration.",
        labels=["endpoint"],
    )
    for endpoint, target_s in sorted(targets_s):
        family.add_metric([endpoint], target_s)
    return family
