"""Redis unreachable: the breaker falls back to per-process state and never raises."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestration.clock import FakeClock
from orchestration.plan import BreakerPolicy
from orchestration.resilience.breaker import BreakerState, CircuitBreaker
from orchestration.resilience.redis_breaker_store import RedisBreakerStore
from tests.orchestration.engine_kit import Recorder


def _dead_redis() -> redis.Redis:
    # No client-side retries: redis-py's default (3 retries with backoff) stalls each call for seconds.
    no_retry = Retry(NoBackoff(), 0)
    return redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.1, socket_timeout=0.1, retry=no_retry)


def test_breaker_works_per_process_when_redis_is_down(clock: FakeClock):
    recorder = Recorder()
    store = RedisBreakerStore(_dead_redis(), observer=recorder)
    breaker = CircuitBreaker("cart", BreakerPolicy(failure_threshold=2), store, clock=clock, observer=recorder)
    for _ in range(2):
        permit = breaker.acquire()
        assert permit.allowed and permit.fallback
        breaker.record(permit, failed=True)
    assert not breaker.acquire().allowed
    assert breaker.snapshot().state is BreakerState.OPEN
    assert [(t.from_state, t.to_state) for t in recorder.transitions] == [("closed", "open")]
    assert recorder.store_errors and all(store_name == "breaker" for store_name, _ in recorder.store_errors)


def test_redis_is_not_retried_on_every_call_while_down(clock: FakeClock):
    recorder = Recorder()
    store = RedisBreakerStore(_dead_redis(), observer=recorder, retry_after_s=1.0)
    breaker = CircuitBreaker("cart", BreakerPolicy(), store, clock=clock)
    for _ in range(5):
        breaker.acquire()
    assert store.fallback_count == 1
    clock.advance(1.0)
    breaker.acquire()
    assert store.fallback_count == 2
