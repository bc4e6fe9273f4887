"""Overload: at most GATEWAY_MAX_IN_FLIGHT aggregate requests run at once per process;
the next wait, then get 503 OVERLOADED instead of starving the ones already running."""

import itertools
import json
import os
import threading
import time
from pathlib import Path

import pytest
from django.test import RequestFactory

from orchestration.web import aggregate
from orchestration.web.admission import AdmissionGate
from tests.support.waiting import eventually


def test_gate_admits_up_to_its_limit_then_waits_and_refuses() -> None:
    gate = AdmissionGate(2, wait_s=0.05)
    assert gate.enter() and gate.enter()
    started = time.monotonic()
    assert not gate.enter()
    assert time.monotonic() - started >= 0.04  # it waited before refusing
    gate.leave()
    assert gate.enter()


def test_gate_with_limit_zero_is_off() -> None:
    gate = AdmissionGate(0, wait_s=0.0)
    assert all(gate.enter() for _ in range(1000))


def test_a_request_over_the_limit_gets_503_overloaded(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = AdmissionGate(1, wait_s=0.0)
    monkeypatch.setattr(aggregate, "_gate", gate)
    assert gate.enter()  # another request holds the only slot
    request = RequestFactory().post("/v1/x", data=b"{}", content_type="application/json")
    response = aggregate._answer(request, "rid-1")
    assert response.status_code == 503
    assert response["Retry-After"] == "1" and response["X-Request-ID"] == "rid-1"
    assert json.loads(response.content)["error"]["code"] == "OVERLOADED"


def test_a_freed_slot_goes_to_the_longest_waiter() -> None:
    import threading

    gate = AdmissionGate(1, wait_s=5.0)
    assert gate.enter()
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


@pytest.fixture
def gevent_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate's tickets as gevent events, as in gunicorn's patched worker: a waiter is a
    greenlet that can be killed (its client hung up; the worker is stopping)."""
    import gevent.event

    monkeypatch.setattr(threading, "Event", gevent.event.Event)


def test_a_killed_waiter_gives_its_place_in_the_queue_back(gevent_events: None) -> None:
    import gevent

    gate = AdmissionGate(1, wait_s=5.0)
    assert gate.enter()
    waiter = gevent.spawn(gate.enter)
    gevent.sleep(0)
    assert gate.waiting == 1
    waiter.kill()
    assert gate.waiting == 0 and gate.in_flight == 1
    gate.leave()
    assert gate.in_flight == 0 and gate.enter()  # the slot came back to the gate, not to the dead waiter


def test_a_waiter_killed_after_it_was_handed_a_slot_gives_the_slot_back(gevent_events: None) -> None:
    import gevent

    gate = AdmissionGate(1, wait_s=5.0)
    assert gate.enter()
    waiter = gevent.spawn(gate.enter)
    second = gevent.spawn(gate.enter)
    gevent.sleep(0)
    waiter.kill(block=False)  # its client hangs up...
    gate.leave()  # ...in the loop turn the slot passes straight to it
    assert gate.in_flight == 1 and gate.waiting == 1
    assert second.get(timeout=1) is True  # the slot went on to the next waiter
    assert waiter.dead and gate.in_flight == 1 and gate.waiting == 0


# --- the adaptive limit (GATEWAY_MAX_IN_FLIGHT=auto) ---------------------------------

from orchestration.web.admission import (  # noqa: E402
    AdaptiveLimit,
    AdaptivePolicy,
    CpuPressure,
    SchedstatReader,
    gate_from_settings,
)


class _Pressure:
    def __init__(self) -> None:
        self.value: float | None = 0.5

    def __call__(self) -> float | None:
        return self.value


def _busy_gate(limit: int) -> AdmissionGate:
    """A gate whose slots are all taken and that had a request waiting."""
    gate = AdmissionGate(limit, wait_s=0.0)
    _fill(gate)
    return gate


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _fill(gate: AdmissionGate) -> None:
    """Requests arrive until one has to wait: every slot runs, the limit holds them back."""
    gate._wait_s = 0.0
    while gate.enter():
        pass


def _period(adaptive: AdaptiveLimit, clock: _Clock, *, lag_s: float = 0.0) -> int:
    clock.now += adaptive.policy.period_s
    adaptive.step(lag_s=lag_s)
    return adaptive.gate.limit


def test_the_limit_grows_while_requests_wait_and_the_cpu_has_room() -> None:
    gate, pressure, clock = AdmissionGate(8, wait_s=0.0), _Pressure(), _Clock()
    pressure.value = 0.84  # just under grow_below (0.85): the least step
    adaptive = AdaptiveLimit(gate, pressure, AdaptivePolicy(start=8, maximum=20), clock=clock)
    seen = []
    for _ in range(12):
        _fill(gate)  # nothing finishes: no duration to wait for between two steps
        seen.append(_period(adaptive, clock))
    assert seen[0] == 9 and seen == sorted(seen) and seen[-1] == 20  # +10 % (+1) per period, up to the maximum


@pytest.mark.parametrize(
    ("pressure_value", "expected"), [(0.2, [17, 35, 71]), (0.425, [17, 35, 71]), (0.6, [12, 18, 27])]
)
def test_far_from_saturation_the_limit_grows_in_proportion_to_the_room_left(
    pressure_value: float, expected: list[int]
) -> None:
    """A limit left at ``start`` by a quiet spell meets a crowd of 100: at pressure 0.2 or
    0.425 (half the threshold) it doubles per step; at 0.6 it grows by 0.85 / 0.6."""
    gate, pressure, clock = AdmissionGate(8, wait_s=0.0), _Pressure(), _Clock()
    pressure.value = pressure_value
    policy = AdaptivePolicy(start=8, maximum=512, period_s=0.125)  # exact in binary: a step every period
    adaptive = AdaptiveLimit(gate, pressure, policy, clock=clock)
    seen = []
    for _ in range(3):
        _fill(gate)
        seen.append(_period(adaptive, clock))
    assert seen == expected


def test_the_limit_grows_at_most_once_per_mean_request_duration() -> None:
    gate, clock = AdmissionGate(10, wait_s=0.0), _Clock()
    adaptive = AdaptiveLimit(gate, _Pressure(), AdaptivePolicy(start=10, smoothing=1.0), clock=clock)
    changes = []
    for _ in range(20):
        _fill(gate)
        for _ in range(gate.in_flight // 5):  # a fifth finishes per 0.1 s: requests last 0.5 s
            gate.leave()
        _fill(gate)
        before = gate.limit
        if _period(adaptive, clock) != before:
            changes.append(round(clock.now - 100.0, 1))
    assert adaptive.mean_duration_s() == pytest.approx(0.5, rel=0.2)
    assert len(changes) >= 3 and all(later - earlier >= 0.4 for earlier, later in itertools.pairwise(changes))


def test_the_limit_comes_back_near_what_is_used_when_the_load_drops() -> None:
    gate, clock = AdmissionGate(8, wait_s=0.0), _Clock()
    adaptive = AdaptiveLimit(gate, _Pressure(), AdaptivePolicy(start=8, maximum=100), clock=clock)
    for _ in range(30):
        _fill(gate)
        _period(adaptive, clock)
    assert gate.limit > 30
    while gate.in_flight > 5:
        gate.leave()
    for _ in range(adaptive.policy.peak_window + 1):
        _period(adaptive, clock)
    assert gate.limit == 8  # max(start, 5 running x 1.25 + 1): a new crowd is let in step by step


def _steady(running: int, pressure_value: float) -> tuple[AdmissionGate, AdaptiveLimit]:
    """A worker that has run ``running`` requests of 0.5 s for 1.5 s (a fifth of them finish
    and are replaced every 0.1 s), its CPU at ``pressure_value``."""
    gate, pressure, clock = AdmissionGate(running + 30, wait_s=0.0), _Pressure(), _Clock()
    pressure.value = pressure_value
    adaptive = AdaptiveLimit(gate, pressure, AdaptivePolicy(start=8), clock=clock)
    for _ in range(running):
        assert gate.enter()
    for _ in range(15):
        for _ in range(running // 5):
            gate.leave()
        for _ in range(running // 5):
            assert gate.enter()
        _period(adaptive, clock)
    assert adaptive.mean_duration_s() == pytest.approx(0.5, rel=0.3)
    return gate, adaptive


def test_a_surge_over_a_steady_load_is_admitted_at_once_while_the_cpu_has_room() -> None:
    gate, _ = _steady(100, pressure_value=0.5)
    assert gate.limit == 170  # 100 running x 0.85 / 0.5: what the CPU can take by the linear model
    assert all(gate.enter() for _ in range(70)), "the surge did not wait for a growth step"
    assert not gate.enter()


def test_near_saturation_a_surge_waits_for_the_limit_to_move() -> None:
    gate, _ = _steady(100, pressure_value=0.9)  # over grow_below (0.85): no room is added
    assert gate.limit == 126  # the recent peak x 1.25 + 1, as before
    assert sum(gate.enter() for _ in range(70)) == 26


def test_the_limit_does_not_grow_when_nobody_waits() -> None:
    gate = AdmissionGate(8, wait_s=0.0)
    adaptive = AdaptiveLimit(gate, _Pressure())
    for _ in range(5):
        adaptive.step()
    assert gate.limit == 8


def test_the_limit_holds_in_the_band_and_is_cut_when_the_cpu_saturates() -> None:
    gate, pressure = _busy_gate(16), _Pressure()
    adaptive = AdaptiveLimit(gate, pressure, AdaptivePolicy(start=16, minimum=2))
    pressure.value = 0.9  # between grow_below and cut_above
    gate.waited = True
    adaptive.step()
    assert gate.limit == 16
    pressure.value = 0.99
    adaptive.step()
    assert gate.limit == 12
    for _ in range(20):
        adaptive.step()
    assert gate.limit == 2  # never below the minimum


def test_loop_lag_cuts_the_limit_even_without_a_pressure_reading() -> None:
    gate, pressure = _busy_gate(16), _Pressure()
    pressure.value = None
    adaptive = AdaptiveLimit(gate, pressure)
    adaptive.step(lag_s=0.2)
    assert gate.limit == 12
    gate.waited = True
    adaptive.step(lag_s=0.0)  # no reading: no growth on a guess
    assert gate.limit == 12


def test_a_raised_limit_admits_waiters_at_once_and_a_lowered_one_lets_runners_finish() -> None:
    import threading

    gate = AdmissionGate(1, wait_s=5.0)
    assert gate.enter()
    admitted = threading.Event()
    threading.Thread(target=lambda: gate.enter() and admitted.set(), daemon=True).start()
    deadline = time.monotonic() + 2
    while gate.waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set_limit(2)
    assert admitted.wait(1.0) and gate.in_flight == 2
    gate.set_limit(1)  # two still run: neither is interrupted
    assert gate.in_flight == 2
    gate.leave()
    gate._wait_s = 0.01
    assert not gate.enter()  # 1 of 1 runs: the next waits, then is refused
    gate.leave()
    assert gate.enter()


def test_cpu_pressure_is_running_plus_waiting_over_wall_time() -> None:
    samples = iter([(1.0, 0.5), (1.3, 0.8), (1.3, 0.8)])
    clock = iter([10.0, 11.0, 12.0])
    pressure = CpuPressure(read=lambda: next(samples), clock=lambda: next(clock))
    assert pressure() == pytest.approx(0.6)  # 0.3 s running + 0.3 s waiting in 1 s
    assert pressure() == pytest.approx(0.0)


def test_schedstat_is_read_afresh_through_one_descriptor_and_a_child_reads_its_own() -> None:
    reader = SchedstatReader()
    try:
        first = reader()
        assert first is not None  # Linux gives it; the gateway falls back to a fixed limit otherwise
        sum(range(2_000_000))  # some CPU for the main thread
        second = reader()
        assert second is not None and second[0] > first[0]
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: its own main thread's time, which starts near zero
            child = reader()
            os.write(write_end, json.dumps(child).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            child_reading = json.loads(pipe.read())
        os.waitpid(pid, 0)
        assert child_reading is not None and child_reading[0] < second[0]
    finally:
        reader.close()
    assert SchedstatReader(Path("/nonexistent/schedstat"))() is None


def test_settings_values_pick_the_gate() -> None:
    fixed, none = gate_from_settings("12", 1.0)
    assert fixed.limit == 12 and none is None
    off, _ = gate_from_settings("0", 1.0)
    assert all(off.enter() for _ in range(100))
    auto, adaptive = gate_from_settings("auto", 1.0)
    assert adaptive is not None and auto.limit == AdaptivePolicy().start


def test_stop_ends_the_adaptive_threads_wait_and_its_steps() -> None:
    gate = AdmissionGate(8, wait_s=0.0)
    adaptive = AdaptiveLimit(gate, _Pressure(), AdaptivePolicy(period_s=3600))  # a wait only stop() ends
    adaptive.start()
    thread = adaptive._thread
    assert thread is not None and thread.is_alive()
    adaptive.stop()
    assert not thread.is_alive()
    assert adaptive._steps == 0  # woken by stop, it took no step


def test_an_idle_gates_steps_rest_until_a_request_is_admitted() -> None:
    """An idle worker's own CPU: with nothing running or waiting for ``rest_after`` periods the
    steps pause (they would change nothing), and the next admitted request resumes them."""
    gate = AdmissionGate(8, wait_s=0.0)
    adaptive = AdaptiveLimit(gate, _Pressure(), AdaptivePolicy(rest_after=3))
    thread = threading.Thread(target=adaptive.run_forever, kwargs={"sleep": lambda _s: None}, daemon=True)
    thread.start()  # periods without a wait: only the rest stops the steps
    try:
        eventually(lambda: adaptive._resting is not None, "the steps resting", 5, poll_s=0.001)
        time.sleep(0.05)
        assert adaptive._steps == 3  # resting, not stepping

        assert gate.enter()
        eventually(lambda: adaptive._steps > 10, "a step per period", 5, poll_s=0.001)  # a request runs: no rest
        assert adaptive._resting is None
        gate.leave()
        eventually(lambda: adaptive._resting is not None, "resting again", 5, poll_s=0.001)  # idle again
    finally:
        adaptive.stop()
    thread.join(5)
    assert not thread.is_alive()  # stop ends a rest


def test_a_rest_does_not_begin_while_a_request_waits_or_runs() -> None:
    gate = _busy_gate(2)
    assert gate.rest_until_busy() is None
    gate.leave()
    gate.leave()
    assert gate.rest_until_busy() is not None
