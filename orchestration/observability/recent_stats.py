"""Recent per-service numbers for on-call: error rate, P95, last success and failure,
and the last breaker transitions — shared by every worker. Also each served
endpoint's answers (``record_request``, for the living specification's measured
columns), kept in the same buckets under ``endpoint_key(name)``.

Why not read Prometheus: its counters are cumulative and per process; the console
and /health/downstream need "the last five minutes, for the whole gateway" without
a Prometheus server. Why not write Redis per attempt: that would put a round trip
on the hot path. So each process accumulates attempts in memory and ``flush``es
deltas at most once a second (one pipelined round trip) into 10-second buckets
that expire; readers sum the buckets of the window. Transitions are rare and are
written at once. Redis errors are swallowed (counted, logged once): telemetry
never fails a request.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from orchestration.observability.metrics import DOWNSTREAM_BUCKETS_S, ERROR_OUTCOMES, observe_store_error
from orchestration.observer import BreakerTransition

logger = logging.getLogger(__name__)

BUCKET_S = 10
WINDOW_S = 300
TRANSITIONS_KEPT = 50
_SKIPPED = ("circuit_open", "bulkhead_full", "other")  # never reached the service
# Endpoint series share the sink with service series: a name of either is a slug, so a key
# holding "/" never collides with a service. Bounded: only endpoints of the served plan.
ENDPOINT_KEY = "endpoint/"


def endpoint_key(name: str) -> str:
    return ENDPOINT_KEY + name


@dataclass(frozen=True, slots=True)
class ServiceStats:
    attempts: int  # attempts that reached the service in the window
    errors: int
    error_rate: float | None  # None: no attempts in the window
    p95_s: float | None
    last_success_at: float | None
    last_failure_at: float | None
    p50_s: float | None = None  # the median, for the living specification (console /spec/)


@dataclass(frozen=True, slots=True)
class TransitionEntry:
    service: str
    from_state: str
    to_state: str
    reason: str
    at: float


Delta = dict[str, int]  # field -> increment; fields: n, err, b<i> (latency bucket i)


class StatsSink(Protocol):
    def add(self, bucket: int, deltas: dict[str, Delta], last: dict[str, dict[str, float]]) -> None: ...

    def read(self, services: Iterable[str], now: float) -> dict[str, ServiceStats]: ...

    def push_transition(self, entry: TransitionEntry) -> None: ...

    def transitions(self, service: str, limit: int) -> list[TransitionEntry]: ...


def bucket_of(now: float) -> int:
    return int(now // BUCKET_S) * BUCKET_S


def p95_from_buckets(counts: list[int]) -> float | None:
    """The 95th percentile by linear interpolation inside a bucket, as histogram_quantile does."""
    return quantile_from_buckets(0.95, counts)


def quantile_from_buckets(quantile: float, counts: list[int]) -> float | None:
    total = sum(counts)
    if total == 0:
        return None
    rank, seen, lower = quantile * total, 0, 0.0
    bounds = (*DOWNSTREAM_BUCKETS_S, DOWNSTREAM_BUCKETS_S[-1])  # overflow bucket reads as the last bound
    for count, upper in zip(counts, bounds, strict=True):
        if count and seen + count >= rank:
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    return bounds[-1]


def latency_bucket(duration_s: float) -> int:
    """Index of the first bucket whose upper bound is >= the duration (the last one: overflow)."""
    return bisect_left(DOWNSTREAM_BUCKETS_S, duration_s)


_BUCKET_FIELDS = tuple(f"b{index}" for index in range(len(DOWNSTREAM_BUCKETS_S) + 1))


def summarize(fields: Iterable[dict[str, int]], last: dict[str, float]) -> ServiceStats:
    attempts = errors = 0
    counts = [0] * (len(DOWNSTREAM_BUCKETS_S) + 1)
    for bucket in fields:
        attempts += bucket.get("n", 0)
        errors += bucket.get("err", 0)
        for index in range(len(counts)):
            counts[index] += bucket.get(f"b{index}", 0)
    return ServiceStats(
        attempts=attempts,
        errors=errors,
        error_rate=(errors / attempts) if attempts else None,
        p95_s=p95_from_buckets(counts),
        last_success_at=last.get("ok"),
        last_failure_at=last.get("fail"),
        p50_s=quantile_from_buckets(0.5, counts),
    )


class RecentStats:
    """Per-process accumulator in front of a shared sink."""

    def __init__(self, sink: StatsSink, *, clock: Callable[[], float] = time.time, flush_every_s: float = 1.0) -> None:
        self.sink = sink
        self._clock, self._flush_every_s = clock, flush_every_s
        self._lock = threading.Lock()
        self._pending: dict[int, dict[str, Delta]] = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
        self._last: dict[str, dict[str, float]] = defaultdict(dict)
        self._flushed_at = clock()
        self._stopped = threading.Event()
        self._flusher: threading.Thread | None = None
        self._on_record: threading.Event | None = None  # set by the next record (the flusher rests)

    def record(self, *, service: str, outcome: str, duration_s: float) -> None:
        if outcome in _SKIPPED:
            return
        failed = True if outcome in ERROR_OUTCOMES else False if outcome == "ok" else None
        self._count(service, failed=failed, duration_s=duration_s)

    def record_request(self, *, endpoint: str, status: int, duration_s: float) -> None:
        """One answer of a served endpoint, when the request finishes. A 5xx (the gateway or a
        required call failed) counts against its success rate; a client's 4xx does not."""
        self._count(endpoint_key(endpoint), failed=status >= 500, duration_s=duration_s)

    def _count(self, key: str, *, failed: bool | None, duration_s: float) -> None:
        """One observation of ``key``; ``failed`` None: neither a success nor a failure (a 4xx)."""
        now = self._clock()
        with self._lock:
            delta = self._pending[bucket_of(now)][key]
            delta["n"] += 1
            delta[_BUCKET_FIELDS[latency_bucket(duration_s)]] += 1
            if failed:
                delta["err"] += 1
                self._last[key]["fail"] = now
            elif failed is not None:
                self._last[key]["ok"] = now
            on_record = self._on_record
            if on_record is not None:  # the first record since the flusher began to rest
                self._on_record, self._flushed_at = None, now  # its flush is the flusher's, not this caller's
                on_record.set()
            due = now - self._flushed_at >= self._flush_every_s
        if due:
            self.flush()

    def record_transition(self, transition: BreakerTransition) -> None:
        entry = TransitionEntry(
            transition.service, transition.from_state, transition.to_state, transition.reason, transition.at
        )
        self.sink.push_transition(entry)

    def flush(self) -> None:
        with self._lock:
            pending, last = self._pending, self._last
            self._pending = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
            self._last = defaultdict(dict)
            self._flushed_at = self._clock()
        for bucket, deltas in pending.items():
            self.sink.add(bucket, {s: dict(d) for s, d in deltas.items()}, {})
        if last:
            self.sink.add(bucket_of(self._clock()), {}, dict(last))

    def start_background_flush(self, interval_s: float = 1.0) -> None:
        """Flush even when traffic stops (a daemon thread; a greenlet under gevent). With
        nothing left to flush it rests until the next record: an idle worker's wake-ups
        are its own CPU (bench/README.md, round 10)."""

        def loop() -> None:
            while not self._stopped.wait(interval_s):
                try:
                    self.flush()
                except Exception:  # the loop must survive anything
                    logger.warning("recent stats: flush failed", exc_info=True)
                self._rest_while_empty()

        self._flusher = threading.Thread(target=loop, name="recent-stats-flush", daemon=True)
        self._flusher.start()

    def _rest_while_empty(self) -> None:
        with self._lock:
            if self._pending or self._last:
                return
            on_record = self._on_record = threading.Event()
        if not self._stopped.is_set():  # stop sets ``_stopped`` before it looks at ``_on_record``
            on_record.wait()

    def stop_background_flush(self, timeout_s: float = 5.0) -> None:
        """End the background flush (its wait included) and wait for its thread. A worker
        never calls it (the thread dies with the process); the tests do, at their end."""
        self._stopped.set()
        with self._lock:
            on_record = self._on_record
        if on_record is not None:
            on_record.set()
        if self._flusher is not None:
            self._flusher.join(timeout_s)


class InProcessStatsSink:
    """The embedded default (one process) and the test double."""

    def __init__(self) -> None:
        self._buckets: dict[int, dict[str, dict[str, int]]] = {}
        self._last: dict[str, dict[str, float]] = defaultdict(dict)
        self._transitions: dict[str, list[TransitionEntry]] = defaultdict(list)
        self._lock = threading.Lock()

    def add(self, bucket: int, deltas: dict[str, Delta], last: dict[str, dict[str, float]]) -> None:
        with self._lock:
            horizon = bucket - WINDOW_S - BUCKET_S  # buckets out of every window: dropped (bounded memory)
            for old in [b for b in self._buckets if b < horizon]:
                del self._buckets[old]
            per_service = self._buckets.setdefault(bucket, {})
            for service, delta in deltas.items():
                fields = per_service.setdefault(service, {})
                for name, value in delta.items():
                    fields[name] = fields.get(name, 0) + value
            for service, stamps in last.items():
                for name, at in stamps.items():
                    self._last[service][name] = max(at, self._last[service].get(name, 0.0))

    def read(self, services: Iterable[str], now: float) -> dict[str, ServiceStats]:
        horizon = bucket_of(now) - WINDOW_S
        with self._lock:
            recent = [fields for bucket, fields in self._buckets.items() if bucket > horizon]
            return {s: summarize((f.get(s, {}) for f in recent), dict(self._last.get(s, {}))) for s in services}

    def push_transition(self, entry: TransitionEntry) -> None:
        with self._lock:
            kept = self._transitions[entry.service]
            kept.insert(0, entry)
            del kept[TRANSITIONS_KEPT:]

    def transitions(self, service: str, limit: int) -> list[TransitionEntry]:
        with self._lock:
            return list(self._transitions.get(service, [])[:limit])


class RedisStatsSink:
    """Buckets as Redis hashes ``<prefix>stats:<service>:<bucket>`` that expire after the window."""

    def __init__(self, client: Any, *, prefix: str = "gateway:") -> None:
        self._client, self._prefix = client, prefix
        self._warned = False

    def add(self, bucket: int, deltas: dict[str, Delta], last: dict[str, dict[str, float]]) -> None:
        def write(pipe: Any) -> None:
            for service, delta in deltas.items():
                key = f"{self._prefix}stats:{service}:{bucket}"
                for name, value in delta.items():
                    pipe.hincrby(key, name, value)
                pipe.expire(key, WINDOW_S + 2 * BUCKET_S)
            for service, stamps in last.items():
                for name, at in stamps.items():
                    pipe.zadd(f"{self._prefix}stats:last:{service}", {name: at}, gt=True)

        self._safely(write)

    def read(self, services: Iterable[str], now: float) -> dict[str, ServiceStats]:
        names = list(services)
        buckets = [b for b in range(bucket_of(now) - WINDOW_S + BUCKET_S, bucket_of(now) + BUCKET_S, BUCKET_S)]
        replies = self._safely(lambda pipe: self._queue_reads(pipe, names, buckets)) or []
        result: dict[str, ServiceStats] = {}
        per_service = len(buckets) + 1
        for index, service in enumerate(names):
            chunk = replies[index * per_service : (index + 1) * per_service] or [{}]
            fields = [{k.decode(): int(v) for k, v in (reply or {}).items()} for reply in chunk[:-1]]
            last = {k.decode(): float(v) for k, v in (chunk[-1] or [])} if len(chunk) == per_service else {}
            result[service] = summarize(fields, last)
        return result

    def _queue_reads(self, pipe: Any, names: list[str], buckets: list[int]) -> None:
        for service in names:
            for bucket in buckets:
                pipe.hgetall(f"{self._prefix}stats:{service}:{bucket}")
            pipe.zrange(f"{self._prefix}stats:last:{service}", 0, -1, withscores=True)

    def push_transition(self, entry: TransitionEntry) -> None:
        key = f"{self._prefix}transitions:{entry.service}"
        payload = json.dumps({"from": entry.from_state, "to": entry.to_state, "reason": entry.reason, "at": entry.at})

        def write(pipe: Any) -> None:
            pipe.lpush(key, payload)
            pipe.ltrim(key, 0, TRANSITIONS_KEPT - 1)

        self._safely(write)

    def transitions(self, service: str, limit: int) -> list[TransitionEntry]:
        replies = self._safely(lambda pipe: pipe.lrange(f"{self._prefix}transitions:{service}", 0, limit - 1))
        items = replies[0] if replies else []
        entries = []
        for raw in items:
            data = json.loads(raw)
            entries.append(TransitionEntry(service, data["from"], data["to"], data["reason"], float(data["at"])))
        return entries

    def _safely(self, queue: Callable[[Any], Any]) -> list[Any] | None:
        try:
            pipe = self._client.pipeline(transaction=False)
            queue(pipe)
            replies = list(pipe.execute())
            self._warned = False
            return replies
        except Exception as error:  # noqa: BLE001 - Redis down: the numbers go stale, serving goes on
            observe_store_error(store="recent_stats")
            if not self._warned:
                logger.warning("recent stats: redis unreachable (%s)", type(error).__name__)
                self._warned = True
            return None
