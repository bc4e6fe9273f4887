"""Through gunicorn (one gevent worker): a slow request body holds no capacity that
serves others and is cut with 408 after GATEWAY_BODY_TIMEOUT_MS (issue 11 item 6);
a client's tracestate, baggage and other headers never reach a downstream, only our
own traceparent, a child of the client's (item 7)."""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.e2e.ops_config import ops_config
from tests.support.fake_downstream import FakeDownstream

pytestmark = pytest.mark.e2e

MAX_IN_FLIGHT = 2
DRIPPERS = 4  # more than the worker's admission slots
DECLARED_BYTES = 100
BODY_TIMEOUT_MS = 1500
ORDER = {
    "name": "order",
    "method": "POST",
    "path": "/orders",
    "timeout_ms": 2000,
    "calls": [
        {
            "id": "cart",
            "service": "cart",
            "stage": 1,
            "method": "GET",
            "path": "/carts/{{ request.body.cartId }}",
            "required": True,
        }
    ],
    "response": {"cart": "{{ cart }}"},
}


@pytest.fixture(scope="module")
def cart(module_fake_downstream: Callable[..., FakeDownstream]) -> FakeDownstream:
    return module_fake_downstream({"*": (200, {"items": [1]})})


@pytest.fixture(scope="module")
def server(
    module_gateway_server: Callable[..., GatewayServer],
    module_fake_downstream: Callable[..., FakeDownstream],
    cart: FakeDownstream,
) -> GatewayServer:
    shipping = module_fake_downstream({"*": (200, {})})
    document = yaml.safe_load(ops_config(cart=cart.url, shipping=shipping.url))
    document["endpoints"].append(ORDER)
    database, redis_db = isolated_targets("slowbody", 12)
    env = {
        "GATEWAY_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
        "GATEWAY_ADMISSION_WAIT_MS": "200",
        "GATEWAY_BODY_TIMEOUT_MS": str(BODY_TIMEOUT_MS),
    }
    return module_gateway_server(yaml.safe_dump(document), env, workers=1, database=database, redis_db=redis_db)


class Dripper(threading.Thread):
    """A client that sends its headers, then one byte of its body a second until the
    gateway answers: a body that declares 100 bytes, or a chunked one (a chunk a byte)."""

    def __init__(self, base_url: str, request_id: str, *, chunked: bool) -> None:
        super().__init__(daemon=True)
        self.chunked = chunked
        parts = urlsplit(base_url)
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.request_id = request_id
        self.sent = 0
        self.answered = threading.Event()
        self.reply: tuple[int, dict[str, str], bytes] | None = None
        self.closed_after = False  # the gateway closed the connection after answering

    def run(self) -> None:
        with socket.create_connection(self.address, timeout=30) as sock:
            framing = "Transfer-Encoding: chunked" if self.chunked else f"Content-Length: {DECLARED_BYTES}"
            head = (
                f"POST /v1/orders HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
                f"Content-Type: application/json\r\n{framing}\r\nX-Request-ID: {self.request_id}\r\n\r\n"
            )
            sock.sendall(head.encode())
            deadline = time.monotonic() + 60
            while self.sent < DECLARED_BYTES and time.monotonic() < deadline:
                readable, _, _ = select.select([sock], [], [], 1.0)
                if readable:
                    break
                byte = b"{" if self.sent == 0 else b" "
                sock.sendall(b"1\r\n" + byte + b"\r\n" if self.chunked else byte)
                self.sent += 1
            response = http.client.HTTPResponse(sock)
            response.begin()
            self.reply = (response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
            try:
                self.closed_after = sock.recv(1) == b""
            except ConnectionResetError:
                self.closed_after = True
        self.answered.set()


def test_slow_bodies_hold_no_capacity_and_get_408(server: GatewayServer, cart: FakeDownstream) -> None:
    cart.hits.clear()
    drippers = [Dripper(server.base_url, f"drip-{index}", chunked=index % 2 == 1) for index in range(DRIPPERS)]
    for dripper in drippers:
        dripper.start()
    time.sleep(0.5)  # every dripper's headers are in; the worker waits for their bodies

    served: list[tuple[int, Any, bool]] = []  # (status, body, every dripper still unanswered when it came back)
    for index in range(3):
        for method, path, body in (("GET", "/v1/cart/7", None), ("POST", "/v1/orders", {"cartId": f"c-{index}"})):
            status, _, raw = server.request(method, path, body=body)
            served.append((status, json.loads(raw), not any(d.answered.is_set() for d in drippers)))
    for dripper in drippers:
        assert dripper.answered.wait(30), f"{dripper.request_id} got no answer"

    assert [status for status, _, _ in served] == [200] * 6  # not 503: the slow bodies held no slot
    assert all(body == {"cart": {"items": [1]}} for _, body, _ in served)
    assert served[0][2], "the first request was served while every slow body was still arriving"
    for dripper in drippers:
        assert dripper.reply is not None
        status, headers, raw = dripper.reply
        assert status == 408
        assert json.loads(raw) == {
            "error": {
                "code": "REQUEST_TIMEOUT",
                "message": f"Request body not received within {BODY_TIMEOUT_MS} ms",
                "failedServices": [],
                "partialData": False,
                "requestId": dripper.request_id,
            },
            "data": {},
        }
        assert headers["x-request-id"] == dripper.request_id
        assert headers["cache-control"] == "no-store"
        assert 0 < dripper.sent < DECLARED_BYTES  # cut while the body was still arriving
        assert dripper.closed_after  # not kept open to drain the rest of the body
    assert dict(cart.hits) == {"/carts/7": 3, "/carts/c-0": 1, "/carts/c-1": 1, "/carts/c-2": 1}


def test_only_our_traceparent_reaches_the_downstream(server: GatewayServer, cart: FakeDownstream) -> None:
    cart.headers.clear()
    client_trace_id, client_span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    status, headers, _ = server.get(
        "/v1/cart/9",
        headers={
            "traceparent": f"00-{client_trace_id}-{client_span_id}-01",
            "tracestate": "vendor=client-secret",
            "baggage": "userId=alice,role=admin",
            "Cookie": "session=s3cret",
            "X-Foo": "bar",
            "Authorization": "Bearer client-token",
            "X-Request-ID": "trace-1",
        },
    )
    assert status == 200 and headers["X-Request-ID"] == "trace-1"
    (received,) = cart.headers["/carts/9"]
    version, trace_id, span_id, flags = received["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", client_trace_id, "01")
    assert span_id not in (client_span_id, "0" * 16)
    assert received["x-request-id"] == "trace-1"
    leaked = {"tracestate", "baggage", "cookie", "x-foo", "authorization"} & set(received)
    assert leaked == set()
    assert not any("client-secret" in value or "alice" in value for value in received.values())
