"""The circuit breaker: one behaviour suite, run against the in-process and Redis stores."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from orchestration import redis_lane
from orchestration.clock import FakeClock
from orchestration.plan import BreakerPolicy
from orchestration.resilience.breaker import BreakerState, CircuitBreaker, Permit
from orchestration.resilience.breaker_store import BreakerStore, InProcessBreakerStore
from orchestration.resilience.redis_breaker_store import RedisBreakerStore
from orchestration.spawn import InlineSpawner
from tests.orchestration.engine_kit import Recorder
from tests.support.redis import redis_or_skip

POLICY = BreakerPolicy(failure_threshold=3, window_s=10, open_s=30, half_open_probes=2)
StoreFactory = Callable[[], BreakerStore]  # a second call gives another process's view of the same state


def _redis() -> redis.Redis:
    client = redis_or_skip()
    return client


@pytest.fixture(params=["in_process", "redis"])
def stores(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    if request.param == "in_process":
        shared = InProcessBreakerStore()
        yield lambda: shared
        return
    client = _redis()
    prefix = f"test:{uuid.uuid4().hex}:"
    yield lambda: RedisBreakerStore(client, prefix=prefix, spawner=InlineSpawner())  # renewals at once, in order
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def breaker(stores: StoreFactory, clock: FakeClock, recorder: Recorder) -> CircuitBreaker:
    return CircuitBreaker("inventory", POLICY, stores(), clock=clock, observer=recorder)


def _fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        permit = breaker.acquire()
        assert permit.allowed
        breaker.record(permit, failed=True)


def _succeed(breaker: CircuitBreaker) -> Permit:
    permit = breaker.acquire()
    breaker.record(permit, failed=False)
    return permit


def _sequence(recorder: Recorder) -> list[tuple[str, str, str]]:
    return [(t.from_state, t.to_state, t.reason) for t in recorder.transitions]


def test_opens_at_the_threshold_within_the_window(breaker, recorder, clock):
    _fail(breaker, 2)
    assert breaker.acquire().allowed
    _fail(breaker)
    assert not breaker.acquire().allowed
    assert _sequence(recorder) == [("closed", "open", "3 failures within 10s")]
    assert recorder.transitions[0].at == clock.wall()


def test_failures_outside_the_window_do_not_count(breaker, clock):
    _fail(breaker, 2)
    clock.advance(10.5)
    _fail(breaker, 2)
    assert breaker.acquire().allowed
    assert breaker.snapshot().failures_in_window == 2


def test_successes_do_not_reset_the_failure_window(breaker):
    _fail(breaker, 2)
    _succeed(breaker)
    _fail(breaker)
    assert not breaker.acquire().allowed


def test_4xx_are_not_failures(breaker):
    for _ in range(5):
        _succeed(breaker)  # the client records a 4xx as not failed (Outcome.is_breaker_failure)
    assert breaker.snapshot().state is BreakerState.CLOSED


def test_full_cycle_closed_open_half_open_with_exactly_n_probes_closed(breaker, recorder, clock):
    _fail(breaker, 3)
    clock.advance(29.9)
    assert not breaker.acquire().allowed
    clock.advance(0.1)
    probes = [breaker.acquire(), breaker.acquire()]
    assert all(p.allowed and p.probe for p in probes)
    assert not breaker.acquire().allowed  # beyond the probes: refused as when open
    for probe in probes:
        breaker.record(probe, failed=False)
    assert breaker.acquire().allowed
    assert _sequence(recorder) == [
        ("closed", "open", "3 failures within 10s"),
        ("open", "half_open", "open for 30s"),
        ("half_open", "closed", "2 probes succeeded"),
    ]


def test_a_failed_probe_reopens(breaker, recorder, clock):
    _fail(breaker, 3)
    clock.advance(30)
    first, second = breaker.acquire(), breaker.acquire()
    breaker.record(first, failed=False)
    breaker.record(second, failed=True)
    assert not breaker.acquire().allowed
    assert _sequence(recorder)[-1] == ("half_open", "open", "probe failed")
    snapshot = breaker.snapshot()
    assert (snapshot.state, snapshot.opened_at, snapshot.seconds_until_half_open) == (
        BreakerState.OPEN,
        clock.wall(),
        30,
    )


def test_a_released_probe_can_be_taken_again(breaker, clock):
    _fail(breaker, 3)
    clock.advance(30)
    first, second = breaker.acquire(), breaker.acquire()
    breaker.release(second)  # never reached the service (bulkhead full, cancelled)
    third = breaker.acquire()
    assert third.allowed and third.probe
    for probe in (first, third):
        breaker.record(probe, failed=False)
    assert breaker.snapshot().state is BreakerState.CLOSED


def test_a_late_result_from_before_the_transition_is_ignored(breaker, clock):
    early = breaker.acquire()  # a slow call started while closed
    _fail(breaker, 3)
    clock.advance(30)
    probe = breaker.acquire()
    breaker.record(early, failed=False)  # must not count as a probe success
    breaker.record(probe, failed=False)
    assert breaker.snapshot().state is BreakerState.HALF_OPEN


def test_open_through_one_process_is_open_in_the_other(stores, clock):
    mine = CircuitBreaker("inventory", POLICY, stores(), clock=clock)
    theirs = CircuitBreaker("inventory", POLICY, stores(), clock=clock)
    assert theirs.acquire().allowed
    _fail(mine, 3)
    clock.advance(0.55)  # past the Redis store's max_age_s (0.5 s, the contract's bound)
    assert not theirs.acquire().allowed
    assert theirs.snapshot().state is BreakerState.OPEN


def test_snapshot_reports_state_and_time_until_half_open(breaker, clock):
    _fail(breaker, 2)
    snap = breaker.snapshot()
    assert (snap.service, snap.state, snap.failures_in_window, snap.opened_at) == ("inventory", "closed", 2, None)
    _fail(breaker)
    clock.advance(12)
    snap = breaker.snapshot()
    assert (snap.state, snap.seconds_until_half_open, snap.forced) == (BreakerState.OPEN, 18, False)
    clock.advance(18)
    assert breaker.snapshot().state is BreakerState.HALF_OPEN


def test_force_open_holds_until_reset(breaker, recorder, clock):
    breaker.force_open()
    clock.advance(3600)
    assert not breaker.acquire().allowed
    assert breaker.snapshot().forced
    breaker.reset()
    assert breaker.acquire().allowed
    assert _sequence(recorder) == [("closed", "open", "forced open"), ("open", "closed", "reset")]


def test_force_closed_ignores_failures_until_reset(breaker):
    breaker.force_closed()
    _fail(breaker, 10)
    assert breaker.acquire().allowed
    breaker.reset()
    _fail(breaker, 3)
    assert not breaker.acquire().allowed


def test_reset_clears_the_failure_window(breaker):
    _fail(breaker, 2)
    breaker.reset()
    _fail(breaker, 2)
    assert breaker.acquire().allowed


class _CountingRedis(redis.Redis):
    round_trips = 0

    def execute_command(self, *args, **options):  # type: ignore[no-untyped-def]
        type(self).round_trips += 1
        return super().execute_command(*args, **options)


def test_redis_store_costs_at_most_one_round_trip_per_attempt(clock, monkeypatch):
    _redis()
    lane_once = redis_lane.Lane._once

    def counting_lane(self, packed, replies):  # type: ignore[no-untyped-def]
        _CountingRedis.round_trips += 1  # the hot path's scripts go on the lane (one write each)
        return lane_once(self, packed, replies)

    monkeypatch.setattr(redis_lane.Lane, "_once", counting_lane)
    client = _CountingRedis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/2"))
    prefix = f"test:{uuid.uuid4().hex}:"
    breaker = CircuitBreaker("cart", POLICY, RedisBreakerStore(client, prefix=prefix), clock=clock)
    try:
        _succeed(breaker)
        start = _CountingRedis.round_trips
        for _ in range(20):  # healthy traffic within the snapshot's life: no round trip at all
            _succeed(breaker)
        assert _CountingRedis.round_trips == start
        _fail(breaker)  # a failure is one script call
        assert _CountingRedis.round_trips == start + 1
    finally:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


# The rate rule (min_calls, failure_rate), against both stores too.
RATE = BreakerPolicy(failure_threshold=1000, window_s=10, open_s=30, half_open_probes=2, min_calls=10, failure_rate=50)


@pytest.fixture
def rate_breaker(stores: StoreFactory, clock: FakeClock, recorder: Recorder) -> CircuitBreaker:
    return CircuitBreaker("inventory", RATE, stores(), clock=clock, observer=recorder)


def _succeed_times(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert _succeed(breaker).allowed


def test_rate_rule_opens_at_failure_rate_once_min_calls_were_made(rate_breaker, recorder):
    _succeed_times(rate_breaker, 5)
    _fail(rate_breaker, 4)
    assert rate_breaker.acquire().allowed  # 9 calls: below min_calls
    _fail(rate_breaker)
    assert not rate_breaker.acquire().allowed
    assert _sequence(recorder) == [("closed", "open", "50% of 10 calls failed within 10s")]


def test_rate_rule_a_handful_of_failures_among_many_calls_keeps_it_closed(rate_breaker, recorder):
    for _ in range(20):
        _succeed_times(rate_breaker, 4)
        _fail(rate_breaker)  # 20 % failures, 20 failures in all
    assert rate_breaker.acquire().allowed
    assert recorder.transitions == []


def test_rate_rule_forgets_calls_outside_the_window(rate_breaker, recorder, clock):
    _fail(rate_breaker, 9)
    clock.advance(11)
    _succeed_times(rate_breaker, 8)
    _fail(rate_breaker, 2)  # 10 calls in the window, 20 % failed
    assert rate_breaker.acquire().allowed
    assert recorder.transitions == []


def test_rate_rule_drops_each_second_as_it_leaves_the_window(rate_breaker, recorder, clock):
    _succeed_times(rate_breaker, 6)
    clock.advance(5)
    _fail(rate_breaker, 4)
    clock.advance(5.5)  # the first second's 6 successes left the window, the failures did not
    _succeed_times(rate_breaker, 4)
    _fail(rate_breaker)  # 9 calls in the window: below min_calls
    assert rate_breaker.acquire().allowed
    _fail(rate_breaker)  # 10 calls, 6 failed
    assert _sequence(recorder) == [("closed", "open", "60% of 10 calls failed within 10s")]


def test_rate_rule_counts_the_calls_of_every_process(stores, clock, recorder):
    first = CircuitBreaker("inventory", RATE, stores(), clock=clock, observer=recorder)
    second = CircuitBreaker("inventory", RATE, stores(), clock=clock, observer=recorder)
    _succeed_times(first, 5)
    _fail(first)  # sends the first process's successes with it
    _fail(second, 3)
    assert second.acquire().allowed
    _fail(second)
    assert _sequence(recorder) == [("closed", "open", "50% of 10 calls failed within 10s")]
    clock.advance(0.55)  # past the Redis store's max_age_s
    assert not first.acquire().allowed


def test_rate_rule_starts_afresh_after_the_breaker_closes(rate_breaker, recorder, clock):
    _fail(rate_breaker, 10)
    clock.advance(30)
    _succeed_times(rate_breaker, 2)  # both probes: closed
    _fail(rate_breaker, 5)  # 5 calls since closing: below min_calls
    assert rate_breaker.acquire().allowed
    assert [t[1] for t in _sequence(recorder)] == ["open", "half_open", "closed"]
