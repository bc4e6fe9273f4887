"""Bulkhead: per service and process; full means fast failure; others unaffected."""

from __future__ import annotations

import threading
import time

from orchestration.clock import FakeClock
from orchestration.executor import Success
from orchestration.outcome import OutcomeKind
from orchestration.plan import BulkheadPolicy
from orchestration.resilience.bulkhead import Bulkhead
from tests.orchestration.engine_kit import Gateway, StuckReply, call, endpoint, service


def test_a_full_bulkhead_rejects_at_once_and_other_services_still_work(downstream, request_context):
    stuck = StuckReply()
    downstream.on("slow", stuck)
    slow = service("slow", bulkhead=BulkheadPolicy(max_concurrent=2, max_wait_ms=0), timeout_ms=5000)
    gateway = Gateway([slow, service("fast")], downstream, FakeClock())
    ep = endpoint(call("slow", required=False), call("fast"))
    busy = [threading.Thread(target=gateway.executor.run, args=(ep, request_context)) for _ in range(2)]
    for thread in busy:
        thread.start()
    _wait_until(lambda: gateway.pool.client("slow").bulkhead.in_flight == 2)
    result = gateway.executor.run(ep, request_context)
    slots_still_held = gateway.pool.client("slow").bulkhead.in_flight == 2  # it did not wait for one
    rejected = [a.kind for a in gateway.recorder.attempts if a.service == "slow"]
    stuck.release.set()
    for thread in busy:
        thread.join()
    assert isinstance(result, Success)
    assert result.body == {"slow": None, "fast": {"service": "fast"}, "partialData": True, "failedServices": ["slow"]}
    assert downstream.hits["slow"] == 2
    assert rejected == [OutcomeKind.BULKHEAD_FULL]
    assert slots_still_held


def test_waits_up_to_max_wait_then_gives_up():
    bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, max_wait_ms=50))
    assert bulkhead.try_enter(1.0)
    started = time.perf_counter()
    assert not bulkhead.try_enter(1.0)
    assert 0.04 < time.perf_counter() - started < 0.5


def test_the_wait_never_exceeds_the_attempts_budget():
    bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, max_wait_ms=5000))
    assert bulkhead.try_enter(1.0)
    started = time.perf_counter()
    assert not bulkhead.try_enter(0.02)
    assert time.perf_counter() - started < 0.5


def test_a_freed_slot_is_taken_by_a_waiter():
    bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, max_wait_ms=1000))
    assert bulkhead.try_enter(1.0)
    threading.Timer(0.02, bulkhead.leave).start()
    assert bulkhead.try_enter(1.0)
    assert bulkhead.in_flight == 1


def _wait_until(condition, timeout_s: float = 2.0) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.005)


class _Waiter:
    def __init__(self) -> None:
        self.waits = 0

    def waiting(self) -> None:
        self.waits += 1


def test_the_waiter_is_told_only_when_a_caller_is_about_to_wait():
    """A hedged attempt arms its timer there (``resilience.hedge``): a free slot must not."""
    bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, max_wait_ms=20))
    waiter = _Waiter()
    assert bulkhead.try_enter(1.0, waiter)
    assert waiter.waits == 0
    assert not bulkhead.try_enter(1.0, waiter)  # full: waits 20 ms, then gives up
    assert waiter.waits == 1
    no_wait = Bulkhead(BulkheadPolicy(max_concurrent=1, max_wait_ms=0))
    assert no_wait.try_enter(1.0) and not no_wait.try_enter(1.0, waiter)
    assert waiter.waits == 1
