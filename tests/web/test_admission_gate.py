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
