"""Overload: an adaptive number of aggregate requests run at once per process (AIMD on
event-loop lag); the next wait first come first served, then get 503 OVERLOADED
instead of starving the ones already running."""

import json
import sys
import threading
import time

import pytest
from django.test import RequestFactory

from orchestration.edge.admission_limit import AdaptiveLimit, LimitPolicy
from orchestration.web import aggregate
from orchestration.web.admission import AdmissionGate, LagMonitor

LAG = 0.050  # above the 30 ms threshold
CALM = 0.002


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float = 0.125) -> None:  # a period (0.1 s) and exact in binary
        self.now += seconds


def controller(clock: FakeClock, **policy: object) -> AdaptiveLimit:
    return AdaptiveLimit(LimitPolicy(**policy), clock)  # type: ignore[arg-type]


def gate_of(limit: int, wait_s: float, clock: FakeClock | None = None, **policy: object) -> AdmissionGate:
    clock = clock or FakeClock()
    return AdmissionGate(controller(clock, initial=limit, **policy), wait_s, clock=clock, start_monitor=False)


# The controller, pure, with a fake clock.


def test_high_lag_decreases_the_limit_multiplicatively_down_to_the_minimum() -> None:
    clock = FakeClock()
    limit = controller(clock, initial=16)
    seen = []
    for _ in range(8):
        clock.advance()
        limit.observe_lag(LAG)
        limit.note_saturated()  # saturation does not matter while lag is high
        limit.adjust()
        seen.append(limit.limit)
    assert seen == [12, 9, 6, 4, 3, 2, 2, 2]


def test_low_lag_and_a_reached_limit_increase_it_additively_up_to_the_ceiling() -> None:
    clock = FakeClock()
    limit = controller(clock, initial=16, ceiling=21)
    seen = []
    for _ in range(4):
        clock.advance()
        limit.observe_lag(CALM)
        limit.note_saturated()
        limit.adjust()
        seen.append(limit.limit)
    assert seen == [18, 20, 21, 21]


def test_an_unreached_limit_does_not_grow() -> None:
    clock = FakeClock()
    limit = controller(clock, initial=16)
    for _ in range(5):
        clock.advance()
        limit.observe_lag(CALM)
        limit.adjust()
    assert limit.limit == 16


def test_nothing_moves_before_a_period_has_passed_and_the_worst_lag_of_a_period_counts() -> None:
    clock = FakeClock()
    limit = controller(clock, initial=16, period_s=0.1)
    limit.note_saturated()
    limit.observe_lag(LAG)
    clock.advance(0.0625)
    assert limit.adjust() is None and limit.limit == 16
    limit.observe_lag(CALM)  # a later calm sample does not hide the lag
    clock.advance(0.0625)
    adjustment = limit.adjust()
    assert adjustment is not None and adjustment.previous == 16 and limit.limit == 12
    # the period's lag and saturation are forgotten once used
    clock.advance()
    limit.observe_lag(CALM)
    limit.adjust()
    assert limit.limit == 12


def test_lag_at_the_threshold_is_not_high() -> None:
    clock = FakeClock()
    limit = controller(clock, initial=10, lag_threshold_s=0.030)
    clock.advance()
    limit.observe_lag(0.030)
    limit.note_saturated()
    limit.adjust()
    assert limit.limit == 12


def test_the_start_is_clamped_between_minimum_and_ceiling() -> None:
    clock = FakeClock()
    assert controller(clock, initial=1).limit == 2
    assert controller(clock, initial=50, ceiling=20).limit == 20


# The gate.


def test_gate_admits_up_to_its_limit_then_waits_and_refuses() -> None:
    gate = gate_of(2, wait_s=0.05)
    assert gate.enter() and gate.enter()
    started = time.monotonic()
    assert not gate.enter()
    assert time.monotonic() - started >= 0.04  # it waited before refusing
    gate.leave()
    assert gate.enter()


def test_gate_with_limit_zero_is_off() -> None:
    gate = AdmissionGate.from_settings(0, ceiling=1000, lag_ms=30, wait_ms=0)
    assert gate.limit is None
    assert all(gate.enter() for _ in range(1000))


def test_gate_from_settings_starts_at_max_in_flight() -> None:
    gate = AdmissionGate.from_settings(16, ceiling=1000, lag_ms=30, wait_ms=2000, start_monitor=False)
    assert gate.limit == 16


def test_a_reached_limit_grows_when_lag_is_low_and_the_new_room_goes_to_a_waiter() -> None:
    clock = FakeClock()
    gate = gate_of(2, wait_s=5.0, clock=clock)
    assert gate.enter() and gate.enter()
    admitted = threading.Event()
    waiter = threading.Thread(target=lambda: gate.enter() and admitted.set())
    waiter.start()
    deadline = time.monotonic() + 2
    while gate.snapshot()["waiting"] != 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    clock.advance()
    gate.observe_lag(CALM)
    assert admitted.wait(2)
    waiter.join(2)
    assert gate.snapshot() == {"limit": 4, "in_flight": 3, "waiting": 0}


def test_lag_shrinks_the_limit_and_running_requests_drain_below_it() -> None:
    clock = FakeClock()
    gate = gate_of(4, wait_s=0.0, clock=clock)
    assert all(gate.enter() for _ in range(4))
    clock.advance()
    gate.observe_lag(LAG)
    assert gate.limit == 3
    gate.leave()  # 3 running, limit 3: still full
    assert not gate.enter()
    gate.leave()
    assert gate.enter()


def test_a_request_over_the_limit_gets_503_overloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = gate_of(2, wait_s=0.0)
    monkeypatch.setattr(aggregate, "_gate", gate)
    assert gate.enter() and gate.enter()  # other requests hold both slots
    request = RequestFactory().post("/v1/x", data=b"{}", content_type="application/json")
    response = aggregate._answer(request, "rid-1")
    assert response.status_code == 503
    assert response["Retry-After"] == "1" and response["X-Request-ID"] == "rid-1"
    assert json.loads(response.content)["error"]["code"] == "OVERLOADED"


def test_a_freed_slot_goes_to_the_longest_waiter() -> None:
    gate = gate_of(2, wait_s=5.0)
    assert gate.enter() and gate.enter()
    order: list[str] = []

    def wait(name: str) -> None:
        if gate.enter():
            order.append(name)
            gate.leave()

    first = threading.Thread(target=wait, args=("first",))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=wait, args=("second",))
    second.start()
    time.sleep(0.05)
    gate.leave()
    first.join(2)
    second.join(2)
    assert order == ["first", "second"]


# The monitor, with a real thread.


def test_the_monitor_measures_lag_while_the_loop_is_blocked() -> None:
    samples: list[float] = []
    monitor = LagMonitor(samples.append, interval_s=0.01)
    monitor.start()
    monitor.start()  # idempotent in one process
    time.sleep(0.1)
    # Hold the GIL for 0.3 s (no forced switch for 1 s): the monitor thread cannot
    # wake up on time, as a greenlet cannot while another one runs without yielding.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1.0)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 0.3:
            pass
    finally:
        sys.setswitchinterval(interval)
    time.sleep(0.1)
    assert monitor.running
    assert max(samples) > 0.05, samples
