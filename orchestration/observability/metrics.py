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
picks its multiprocess value class at import when the variable is set). Importing
this module swaps that class for ``_LeanMmapValue``: the same files, read by the
same ``MultiProcessCollector``, without a ``getpid`` and a lock per write — each
aggregate request writes ~34 values (ours and django-prometheus's), and the stock
class spent more on those checks than on the writes (bench/README.md). Every write
still lands in the mmap before the request answers, so a scrape in any worker sees it.
"""

from __future__ import annotations

import inspect
import os
import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.mmap_dict import MmapedDict, mmap_key

# --- multiprocess values without a getpid and a lock per write -----------------


def _stock_values_created() -> int | None:
    """How many values prometheus_client's own multiprocess class has created in this
    process (None when that cannot be told: another version, or not multiprocess mode)."""
    value_class = values.ValueClass
    if not getattr(value_class, "_multiprocess", False):
        return None
    try:
        created = inspect.getclosurevars(value_class.__init__).nonlocals.get("values")
    except (TypeError, AttributeError):
        return None
    return len(created) if isinstance(created, list) else None


_pack_two_doubles = struct.Struct(b"dd").pack
_MmapedDict: Any = MmapedDict


class _LeanMmapValue:
    """prometheus_client's ``MmapedValue`` with the same files, keys and layout
    (``<type>_<pid>.db`` in ``PROMETHEUS_MULTIPROC_DIR``, read by the usual
    ``MultiProcessCollector``), minus what each write paid for nothing here:

    - ``os.getpid()`` per write, to notice a fork: a fork is noticed once, by
      ``os.register_at_fork`` (gunicorn forks its workers before any metric exists);
    - a lock per write: under gevent the read-add-write of one value cannot be
      interrupted (no greenlet switch inside), so the lock only cost time.
      Without gevent (tests, ``runserver``) ``_LockedLeanMmapValue`` keeps one.
    """

    _multiprocess = True
    _files: dict[str, Any] = {}  # file prefix -> MmapedDict (untyped upstream)
    _values: list[_LeanMmapValue] = []
    _pid = os.getpid()
    _lock = threading.Lock()

    _file: Any
    _key: str
    _end: int
    _value: float
    _timestamp: float

    def __init__(
        self,
        typ: str,
        metric_name: str,
        name: str,
        labelnames: Sequence[str],
        labelvalues: Sequence[str],
        help_text: str,
        multiprocess_mode: str = "",
        **kwargs: Any,
    ) -> None:
        self._params = typ, metric_name, name, labelnames, labelvalues, help_text, multiprocess_mode
        with _LeanMmapValue._lock:
            self._open()
            _LeanMmapValue._values.append(self)

    def _open(self) -> None:
        typ, metric_name, name, labelnames, labelvalues, help_text, multiprocess_mode = self._params
        prefix = f"gauge_{multiprocess_mode}" if typ == "gauge" else typ
        files = _LeanMmapValue._files
        if prefix not in files:
            directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
            files[prefix] = _MmapedDict(os.path.join(directory, f"{prefix}_{_LeanMmapValue._pid}.db"))
        self._file = files[prefix]
        self._key = mmap_key(metric_name, name, list(labelnames), list(labelvalues), help_text)
        self._value, self._timestamp = self._file.read_value(self._key)  # adds the entry when new
        self._end = self._file._positions[self._key] + 16  # where value and timestamp end; never moves

    def inc(self, amount: float) -> None:
        self._value += amount
        self._timestamp = 0.0
        # MmapedDict.write_value, inlined: one slice assignment of both doubles at once
        # (never pack_into, which writes zeros first), into the current map (``_m``
        # is replaced when the file grows).
        end = self._end
        self._file._m[end - 16 : end] = _pack_two_doubles(self._value, 0.0)

    def set(self, value: float, timestamp: float | None = None) -> None:
        self._value = value
        self._timestamp = timestamp or 0.0
        end = self._end
        self._file._m[end - 16 : end] = _pack_two_doubles(value, self._timestamp)

    def set_exemplar(self, exemplar: Any) -> None:  # not in multiprocess mode (as prometheus_client)
        return

    def get(self) -> float:
        return self._value

    def get_exemplar(self) -> None:
        return None

    @classmethod
    def close_all_files(cls) -> None:
        with cls._lock:
            for file in cls._files.values():
                file.close()
            cls._files.clear()
            cls._values.clear()

    @classmethod
    def _after_fork(cls) -> None:
        """In a forked child: the parent's files are the parent's; start this process's own."""
        cls._pid = os.getpid()
        cls._lock = threading.Lock()
        for file in cls._files.values():  # the parent's files stay the parent's (closing here closes only ours)
            file.close()
        cls._files.clear()
        for value in cls._values:
            value._open()


class _LockedLeanMmapValue(_LeanMmapValue):
    """With real threads a read-add-write can interleave: one lock per write, as prometheus_client."""

    def inc(self, amount: float) -> None:
        with _LeanMmapValue._lock:
            super().inc(amount)

    def set(self, value: float, timestamp: float | None = None) -> None:
        with _LeanMmapValue._lock:
            super().set(value, timestamp)


def _threads_are_greenlets() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("threading"))


def _install_lean_values() -> bool:
    """Use ``_LeanMmapValue`` for every metric created from now on, if nothing has
    written a multiprocess value in this process yet (two writers on one file
    would overwrite each other's entries). Returns whether it was installed."""
    if _stock_values_created() != 0:
        return False
    chosen = _LeanMmapValue if _threads_are_greenlets() else _LockedLeanMmapValue
    values.ValueClass = chosen
    values._multi_process_cleanups.append(_LeanMmapValue.close_all_files)
    os.register_at_fork(after_in_child=_LeanMmapValue._after_fork)
    return True


_install_lean_values()

REQUEST_BUCKETS_S = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
    0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip
DOWNSTREAM_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3, 0.4, 0.5, 0.75, 1.0, 2.0, 5.0,
)  # fmt: skip

OUTCOMES = (
    "ok", "4xx", "429", "5xx", "timeout", "connect", "bad_body", "circuit_open", "bulkhead_full", "other",
    "graphql_error",
)  # fmt: skip
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
    "circuit_open, bulkhead_full, graphql_error).",
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
resilience_decisions = Counter(
    "gateway_resilience_decisions_total",
    "Resilience decisions per service and endpoint (orchestration.observer.DECISIONS: retry_after_*, "
    "retry_over_budget, stale_served, hedge_*): contract section 7.",
    ["service", "endpoint", "decision"],
)
explain_requests = Counter(
    "gateway_explain_requests_total",
    "Explain runs (contract section 6), per source: header (X-Gateway-Explain with the token) or "
    "console (/console/explain/). Header runs are also counted in the request series, as served.",
    ["source"],
)
EXPLAIN_SOURCES = ("header", "console")  # the only values of its one label

response_schema_violations = Counter(
    "gateway_response_schema_violations_total",
    "Assembled responses that broke their endpoint's response_schema, per endpoint and field "
    "(the first failing one) and action (log or fail).",
    ["endpoint", "field", "action"],
)
MAX_SCHEMA_FIELDS_PER_ENDPOINT = 50  # beyond it "(other)": field labels come from response data paths
_schema_fields: dict[str, set[str]] = {}


_enabled = True


def set_enabled(enabled: bool) -> None:
    """``GATEWAY_METRICS=off`` (read by ``gateway_project.wiring``): write no series per request."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    return _enabled


# The methods of RFC 9110 and PATCH (django-prometheus's list). A client may send any
# token as a method; a label value per token would be a series per client whim.
HTTP_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH"))
OTHER_METHOD = "other"


def method_label(method: str | None) -> str:
    """The ``method`` label of a request: one of ``HTTP_METHODS``, else ``"other"``."""
    return method if method in HTTP_METHODS else OTHER_METHOD


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
        child = remember_child(cache, values, metric.labels(*values))
    return child


def remember_child(cache: dict[Any, Any], key: Any, child: Any) -> Any:
    """Keeps a metric's label child under ``key`` in a bounded cache (emptied when full)."""
    if len(cache) >= _CHILDREN_KEPT:
        cache.clear()
    cache[key] = child
    return child


_request_duration_children: dict[tuple[str, ...], Any] = {}
_requests_total_children: dict[tuple[str, ...], Any] = {}
_partial_responses_children: dict[tuple[str, ...], Any] = {}
_downstream_attempts_children: dict[tuple[str, ...], Any] = {}
_downstream_duration_children: dict[tuple[str, ...], Any] = {}


def observe_request(*, endpoint: str, method: str, status: int, duration_s: float, partial: bool) -> None:
    if not _enabled:
        return
    _child(request_duration, _request_duration_children, (endpoint, method)).observe(duration_s)
    _child(requests_total, _requests_total_children, (endpoint, str(status))).inc()
    if partial:
        _child(partial_responses, _partial_responses_children, (endpoint,)).inc()


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


def observe_decision(*, service: str, endpoint: str, decision: str) -> None:
    if not _enabled:
        return
    resilience_decisions.labels(service=service, endpoint=endpoint, decision=decision).inc()


def observe_schema_violation(*, endpoint: str, field: str, failed: bool) -> None:
    if not _enabled:
        return
    seen = _schema_fields.setdefault(endpoint, set())
    if field not in seen and len(seen) >= MAX_SCHEMA_FIELDS_PER_ENDPOINT:
        field = "(other)"
    seen.add(field)
    response_schema_violations.labels(endpoint=endpoint, field=field, action="fail" if failed else "log").inc()


def observe_explain(*, source: str) -> None:
    """One explain run; ``source`` is one of ``EXPLAIN_SOURCES`` (anything else is a bug)."""
    if not _enabled:
        return
    if source not in EXPLAIN_SOURCES:
        raise ValueError(f"unknown explain source {source!r}")
    explain_requests.labels(source=source).inc()


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
