"""Admission over HTTP, through gunicorn: a worker at its limit of running aggregate
requests makes the next one wait, then answers it 503 OVERLOADED (the contract's
envelope, Retry-After, X-Request-ID, no-store) without calling any downstream."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from tests.e2e.ops_config import ops_config

pytestmark = pytest.mark.e2e

SLOW_S = 0.8


def test_a_request_over_the_admission_limit_gets_503_overloaded(fake_downstream, gateway_server) -> None:
    def slow_cart(handler: Any) -> tuple[int, Any]:
        time.sleep(SLOW_S)
        return 200, {"items": [1]}

    cart = fake_downstream({"*": slow_cart})
    shipping = fake_downstream({"*": (200, {})})
    server = gateway_server(
        ops_config(cart=cart.url, shipping=shipping.url),
        env_overrides={"GATEWAY_MAX_IN_FLIGHT": "1", "GATEWAY_ADMISSION_WAIT_MS": "200"},
        workers=1,
    )
    replies: dict[str, tuple[int, dict[str, str], bytes, float]] = {}

    def send(name: str) -> None:
        started = time.monotonic()
        status, headers, body = server.get("/v1/cart/7", headers={"X-Request-ID": f"req-{name}"})
        replies[name] = (status, headers, body, time.monotonic() - started)

    first = threading.Thread(target=send, args=("first",))
    first.start()
    time.sleep(0.2)  # the first one runs (its cart call takes 0.8 s) when the second arrives
    send("second")
    first.join()

    status, headers, body, _ = replies["first"]
    assert status == 200 and json.loads(body) == {"cart": {"items": [1]}}
    status, headers, body, elapsed_s = replies["second"]
    assert status == 503
    error = json.loads(body)["error"]
    assert (error["code"], error["requestId"], error["partialData"]) == ("OVERLOADED", "req-second", False)
    assert headers["Retry-After"] == "1"
    assert headers["X-Request-ID"] == "req-second"
    assert headers["Cache-Control"] == "no-store"
    assert 0.2 <= elapsed_s < SLOW_S  # it waited its 200 ms, not for the running request
    assert cart.hits["/carts/7"] == 1  # the refused request called nothing
