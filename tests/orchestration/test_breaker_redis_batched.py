"""Issue 17 round 3: a process's breaker snapshots are renewed together, one round trip
for every service it calls, instead of one script per service per ``snapshot_ttl_s``.
Round 9: past ``snapshot_ttl_s`` the renewal runs beside the call that finds it due (here
on an ``InlineSpawner``: at once, so its round trips are counted in order); that call is
answered from the kept snapshot, the next ones from the renewed one."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import redis.connection

from orchestration import redis_lane
from orchestration.clock import FakeClock
from orchestration.plan import BreakerPolicy
from orchestration.resilience.breaker import CircuitBreaker
from orchestration.resilience.redis_breaker_store import RedisBreakerStore
from orchestration.spawn import InlineSpawner
from tests.orchestration.engine_kit import Recorder
from tests.support.redis import redis_or_skip

POLICY = BreakerPolicy(failure_threshold=3, window_s=10, open_s=30, half_open_probes=2)
RATE = BreakerPolicy(failure_threshold=1000, window_s=10, open_s=30, half_open_probes=2, min_calls=10, failure_rate=50)
SERVICES = ("cart", "pricing", "inventory", "shipping", "profile")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = redis_or_skip()
    yield client


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every write to a Redis socket, redis-py's or the hot path's lane (``redis_lane``):
    one per round trip (a pipeline is one write)."""
    seen: list[bytes] = []
    original = redis.connection.AbstractConnection.send_packed_command
    lane_once = redis_lane.Lane._once

    def counting(self, command, check_health=True):  # type: ignore[no-untyped-def]
        seen.append(b"".join(command) if isinstance(command, list) else command)
        return original(self, command, check_health)

    def counting_lane(self, packed, replies):  # type: ignore[no-untyped-def]
        seen.append(packed)
        return lane_once(self, packed, replies)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counting)
    monkeypatch.setattr(redis_lane.Lane, "_once", counting_lane)
    return seen


def _store(client: redis.Redis, prefix: str) -> RedisBreakerStore:
    return RedisBreakerStore(client, prefix=prefix, spawner=InlineSpawner())


def _breakers(store: RedisBreakerStore, clock: FakeClock, recorder: Recorder) -> list[CircuitBreaker]:
    return [CircuitBreaker(name, POLICY, store, clock=clock, observer=recorder) for name in SERVICES]


def test_expired_snapshots_of_every_called_service_are_renewed_in_one_round_trip(client, prefix, sends, clock):
    breakers = _breakers(_store(client, prefix), clock, Recorder())
    for breaker in breakers:
        breaker.record(breaker.acquire(), failed=False)
    for _ in range(3):  # three snapshot lifetimes of healthy traffic to five services
        clock.advance(0.3)
        sends.clear()
        for _ in range(10):
            for breaker in breakers:
                permit = breaker.acquire()
                assert permit.allowed
                breaker.record(permit, failed=False)
        assert len(sends) == 1  # one pipeline: the five services' snapshots together


def test_an_opening_elsewhere_is_seen_through_the_batched_renewal(client, prefix, clock):
    recorder = Recorder()
    here = _breakers(_store(client, prefix), clock, recorder)
    there = CircuitBreaker("inventory", POLICY, _store(client, prefix), clock=clock)
    for breaker in here:
        assert breaker.acquire().allowed
    for _ in range(3):
        there.record(there.acquire(), failed=True)
    clock.advance(0.3)  # past this process's snapshot's lifetime
    assert here[0].acquire().allowed  # cart: starts the renewal of every snapshot, inventory's included
    assert not here[2].acquire().allowed  # inventory: open, answered from the renewed snapshot


def test_a_transition_found_by_a_renewal_is_reported_with_that_service(client, prefix, clock):
    recorder = Recorder()
    first = CircuitBreaker("inventory", RATE, _store(client, prefix), clock=clock)
    store = _store(client, prefix)
    second = CircuitBreaker("inventory", RATE, store, clock=clock, observer=recorder)
    other = CircuitBreaker("cart", POLICY, store, clock=clock, observer=recorder)
    second.record(second.acquire(), failed=False)  # one success, pending in this process
    assert other.acquire().allowed
    for _ in range(9):  # 9 of 9 calls failed: below min_calls
        first.record(first.acquire(), failed=True)
    clock.advance(0.3)
    assert other.acquire().allowed  # the renewal sends inventory's success: 10 calls, 90 % failed
    assert not second.acquire().allowed
    assert [(t.service, t.to_state) for t in recorder.transitions] == [("inventory", "open")]


def test_redis_down_the_renewal_falls_back_to_per_process_state(prefix, clock):
    dead = redis.Redis(host="127.0.0.1", port=1, socket_timeout=0.2, socket_connect_timeout=0.2)
    breakers = _breakers(_store(dead, prefix), clock, Recorder())
    for breaker in breakers:
        permit = breaker.acquire()
        assert permit.allowed and permit.fallback
        breaker.record(permit, failed=False)


class _Parked:
    """A spawner that keeps what it is given: the renewal beside a call, not yet run."""

    def __init__(self) -> None:
        self.tasks: list[Callable[[], object]] = []

    def start(self, tasks: list[Callable[[], object]], urgent: object = None) -> None:
        self.tasks.extend(tasks)


def test_a_due_renewal_runs_beside_the_calls_which_answer_from_the_kept_snapshot(client, prefix, sends, clock):
    parked = _Parked()
    breakers = _breakers(RedisBreakerStore(client, prefix=prefix, spawner=parked), clock, Recorder())  # type: ignore[arg-type]
    for breaker in breakers:
        breaker.record(breaker.acquire(), failed=False)
    clock.advance(0.3)  # past the snapshots' lifetime, within max_age_s (0.5 s)
    sends.clear()
    for breaker in breakers * 4:
        assert breaker.acquire().allowed
    assert sends == [] and len(parked.tasks) == 1  # no call waited on Redis; one renewal started
    parked.tasks.pop()()
    assert len(sends) == 1  # the five snapshots in one round trip
    clock.advance(0.3)
    for breaker in breakers:
        breaker.acquire()
    assert len(parked.tasks) == 1  # due again: a new renewal beside


def test_a_snapshot_past_max_age_is_renewed_inside_the_call(client, prefix, sends, clock):
    parked = _Parked()
    breakers = _breakers(RedisBreakerStore(client, prefix=prefix, spawner=parked), clock, Recorder())  # type: ignore[arg-type]
    for breaker in breakers:
        breaker.record(breaker.acquire(), failed=False)
    clock.advance(0.55)
    sends.clear()
    assert breakers[0].acquire().allowed
    assert len(sends) == 1 and parked.tasks == []
