"""The request body is received before admission, within GATEWAY_BODY_TIMEOUT_MS (408)
and GATEWAY_MAX_BODY_BYTES (413); a broken stream is a 400, never a 500.

A slow client is a gevent socket that received only part of the declared body: reads
on it yield to the hub (no monkey-patching needed), as gunicorn's gevent worker does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from django.test import Client
from gevent import socket as gsocket

from orchestration.plan import Endpoint
from orchestration.templates import compile_template
from orchestration.web import aggregate
from orchestration.web.admission import AdmissionGate
from tests.web.conftest import Gateway, auth, make_plan

ORDER = Endpoint(name="order", method="POST", path="/orders", calls=(), response=compile_template({}))
PROFILE = Endpoint(name="profile", method="GET", path="/profile", calls=(), response=compile_template({}))
DECLARED = 100


@pytest.fixture
def body_timeout(settings: Any) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "BODY_TIMEOUT_MS": 200, "MAX_BODY_BYTES": 1000}


@pytest.fixture
def slow_body() -> Iterator[dict[str, Any]]:
    """WSGI environ entries of a body that declares 100 bytes and sends 10, then nothing
    (the client hangs up after 10 s: a gateway without a body timeout does not hang the test; 10 s, not
    less, since on a loaded machine the first request of a run may take seconds to reach the body)."""
    ours, theirs = gsocket.socketpair()
    theirs.sendall(b'{"cartId":')
    hang_up = gevent.spawn_later(10, theirs.shutdown, gsocket.SHUT_WR)
    stream = ours.makefile("rb")
    yield {"wsgi.input": stream, "CONTENT_LENGTH": str(DECLARED)}
    hang_up.kill()
    stream.close()
    ours.close()
    theirs.close()


def post(environ: dict[str, Any], **headers: str) -> Any:
    return Client().post("/v1/orders", content_type="application/json", **headers, **environ)


def assert_envelope(response: Any, status: int, code: str, request_id: str) -> None:
    assert response.status_code == status
    assert json.loads(response.content) == {
        "error": {
            "code": code,
            "message": json.loads(response.content)["error"]["message"],
            "failedServices": [],
            "partialData": False,
            "requestId": request_id,
        },
        "data": {},
    }
    assert response["X-Request-ID"] == request_id
    assert response["Cache-Control"] == "no-store"


def test_a_body_not_received_in_time_is_a_408_envelope_and_runs_nothing(
    gateway: Gateway, body_timeout: None, slow_body: dict[str, Any]
) -> None:
    gateway.install(make_plan(ORDER))
    response = post(slow_body, **auth("alice"), HTTP_X_REQUEST_ID="slow-1")
    assert_envelope(response, 408, "REQUEST_TIMEOUT", "slow-1")
    assert json.loads(response.content)["error"]["message"] == "Request body not received within 200 ms"
    assert gateway.executor.runs == {}


def test_a_slow_body_keeps_the_edge_order_401_before_408(
    gateway: Gateway, body_timeout: None, slow_body: dict[str, Any]
) -> None:
    gateway.install(make_plan(ORDER))
    response = post(slow_body, HTTP_X_REQUEST_ID="slow-2")
    assert_envelope(response, 401, "UNAUTHENTICATED", "slow-2")
    assert gateway.executor.runs == {}


def test_a_request_receiving_its_body_holds_no_admission_slot(
    gateway: Gateway, body_timeout: None, slow_body: dict[str, Any]
) -> None:
    gateway.install(make_plan(ORDER, PROFILE))
    before = aggregate._gate
    aggregate.install_admission_gate(AdmissionGate(1, 0.0))  # one slot, no waiting: a held slot is a 503
    try:
        dripping = gevent.spawn(post, slow_body, **auth("alice"))
        gevent.sleep(0.05)  # it is now waiting for the rest of its body
        assert not dripping.ready()
        served = Client().get("/v1/profile", **auth("bob"))
        slow = dripping.get(timeout=5)
    finally:
        aggregate.install_admission_gate(before)
    assert served.status_code == 200
    assert slow.status_code == 408
    assert gateway.executor.runs == {"profile": 1}


def test_a_declared_length_over_the_limit_is_413_without_reading_the_body(gateway: Gateway, body_timeout: None) -> None:
    class Unreadable:
        def read(self, *args: Any) -> bytes:
            raise AssertionError("the body was read")

        readline = read

    gateway.install(make_plan(ORDER))
    response = post({"wsgi.input": Unreadable(), "CONTENT_LENGTH": "1001"}, **auth("alice"), HTTP_X_REQUEST_ID="big")
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE", "big")
    assert gateway.executor.runs == {}


def test_a_stream_that_breaks_mid_body_is_400_not_500(gateway: Gateway, body_timeout: None) -> None:
    class Disconnected:
        def read(self, *args: Any) -> bytes:
            raise ConnectionResetError("client went away")

        readline = read

    gateway.install(make_plan(ORDER))
    response = post({"wsgi.input": Disconnected(), "CONTENT_LENGTH": "10"}, **auth("alice"), HTTP_X_REQUEST_ID="gone")
    assert_envelope(response, 400, "BAD_REQUEST", "gone")
    assert gateway.executor.runs == {}


def test_a_complete_body_is_served(gateway: Gateway, body_timeout: None) -> None:
    gateway.install(make_plan(ORDER))
    response = Client().post("/v1/orders", data={"cartId": "c-1"}, content_type="application/json", **auth("alice"))
    assert response.status_code == 200
    assert gateway.executor.runs == {"order": 1}
