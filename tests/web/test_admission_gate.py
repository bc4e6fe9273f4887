"""Overload: at most GATEWAY_MAX_IN_FLIGHT aggregate requests run at once per process;
the next wait, then get 503 OVERLOADED instead of starving the ones already running."""

import json
import time

import pytest
from django.test import RequestFactory

from orchestration.web import aggregate
from orchestration.web.aggregate import AdmissionGate


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
