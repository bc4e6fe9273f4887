"""A client that hangs up mid-request stops its request, through gunicorn's gevent worker:
the call under way finishes and no later stage is called, a request waiting for admission
leaves the queue at once, the admission slot is given back, and the access line records 499."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import GatewayServer
from tests.support.fake_downstream import FakeDownstream
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

PATH = "/v1/gone/order"


def config_yaml(downstream_url: str) -> str:
    calls = [
        {"id": "first", "service": "work", "stage": 1, "method": "GET", "path": "/first", "required": True},
        {"id": "second", "service": "work", "stage": 2, "method": "GET", "path": "/second", "required": True},
    ]
    return json.dumps(
        {
            "version": 1,
            "layer": {"name": "Gone", "owner": "Platform Team", "base_path": "/v1/gone", "auth": {"type": "none"}},
            "services": {"work": {"base_url": downstream_url, "owner": "Work Team", "timeout_ms": 8000}},
            "endpoints": [
                {
                    "name": "order",
                    "method": "GET",
                    "path": "/order",
                    "purpose": "Two stages, the first held until the test releases it",
                    "timeout_ms": 9000,
                    "calls": calls,
                    "response": {"first": "{{ first.value }}", "second": "{{ second.value }}"},
                }
            ],
        }
    )


@pytest.fixture
def held(fake_downstream: Callable[..., FakeDownstream]) -> Iterator[tuple[FakeDownstream, threading.Event]]:
    release = threading.Event()

    def first(_: Any) -> tuple[int, Any]:
        release.wait(10)
        return 200, {"value": "one"}

    yield fake_downstream({"/first": first, "/second": (200, {"value": "two"})}), release
    release.set()


def start(gateway_server: Callable[..., GatewayServer], work: FakeDownstream) -> GatewayServer:
    # One worker admitting one request at a time: a slot never given back would stall it.
    env = {"GATEWAY_MAX_IN_FLIGHT": "1", "GATEWAY_ADMISSION_WAIT_MS": "5000"}
    return gateway_server(config_yaml(work.url), env_overrides=env, workers=1)


def send_raw(server: GatewayServer, request_id: str) -> socket.socket:
    port = int(server.base_url.rsplit(":", 1)[1])
    client = socket.create_connection(("127.0.0.1", port), timeout=10)
    client.sendall(f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: {request_id}\r\n\r\n".encode())
    return client


def access_line(server: GatewayServer, request_id: str) -> dict[str, Any] | None:
    for line in server.log_lines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("name") == "gateway.access" and entry.get("request_id") == request_id:
                return entry  # type: ignore[no-any-return]
    return None


def test_a_client_that_hangs_up_stops_its_request(held, gateway_server) -> None:
    work, release = held
    server = start(gateway_server, work)

    client = send_raw(server, "gone-1")
    eventually(lambda: work.hits["/first"] == 1, "the first stage's call")
    client.close()  # the client leaves while its first stage runs
    time.sleep(0.3)  # (ordering only: the hang-up reaches the gateway before the call answers)
    release.set()  # the call under way answers; nobody is there to take the request's answer

    line = eventually(lambda: access_line(server, "gone-1"), "the access line of the abandoned request")
    assert (line["status"], line["endpoint"]) == (499, "order")
    status, _, body = server.get(PATH, headers={"X-Request-ID": "after-1"})  # the only slot is free
    assert status == 200 and json.loads(body) == {"first": "one", "second": "two"}
    assert work.hits["/second"] == 1  # the abandoned request started no later stage
    assert work.hits["/first"] == 2


def test_a_client_that_hangs_up_while_waiting_for_admission_gives_its_place_back(held, gateway_server) -> None:
    work, release = held
    server = start(gateway_server, work)

    running = send_raw(server, "running-1")
    eventually(lambda: work.hits["/first"] == 1, "the running request's first call")
    waiting = send_raw(server, "waiting-1")  # the only slot is taken: this one waits at the gate
    time.sleep(0.3)  # (ordering only: let it reach the gate before its client leaves)
    waiting.close()
    line = eventually(lambda: access_line(server, "waiting-1"), "the access line of the abandoned request")
    assert (line["status"], line["endpoint"]) == (499, "order")  # counted under its endpoint, never admitted

    release.set()
    reply = b""
    while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
        chunk = running.recv(65536)
        if not chunk:
            break
        reply += chunk
    running.close()
    assert reply.startswith(b"HTTP/1.1 200 ")

    status, _, body = server.get(PATH, headers={"X-Request-ID": "after-2"})
    assert status == 200 and json.loads(body) == {"first": "one", "second": "two"}
    assert work.hits["/first"] == 2  # the running request and the last one; the abandoned one called nothing
    assert work.hits["/second"] == 2
