"""A CPU-starved gateway must not blame a healthy downstream: an answer the kernel
received before the attempt's deadline counts as on time even when this process
only reads it later; one that arrived after the deadline is still a timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from orchestration.downstream import DownstreamPool, RequestSpec, http1
from orchestration.outcome import OutcomeKind
from orchestration.plan import Service
from tests.support.raw_server import serve_connections

ANSWER = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


@pytest.fixture
def delayed_server() -> Iterator[int]:
    """Answers ``GET /after/<ms>`` that many milliseconds after the request arrived;
    ``GET /split/<ms>`` at once but for the last 10 body bytes, sent that much later."""
    server = socket.create_server(("127.0.0.1", 0))

    def handle(conn: socket.socket) -> None:
        with conn:
            while request := conn.recv(65536):
                path = request.split(b" ")[1]
                delay_ms = int(path.rsplit(b"/", 1)[1])
                if path.startswith(b"/split/"):  # the head and one body byte at once, the rest later
                    conn.sendall(ANSWER[:-10])
                    time.sleep(delay_ms / 1000)
                    conn.sendall(ANSWER[-10:])
                    continue
                time.sleep(delay_ms / 1000)
                conn.sendall(ANSWER)

    serve_connections(server, handle)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def busy_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process is busy for 600 ms between sending and reading (a saturated CPU)."""
    real = http1.read_head

    def late(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.6)
        return real(*args, **kwargs)

    monkeypatch.setattr(http1, "read_head", late)


def _attempt(port: int, delay_ms: int, timeout_s: float = 0.2, path: str = "after") -> Any:
    service = Service(name="svc", base_url=f"http://127.0.0.1:{port}")
    pool = DownstreamPool({"svc": service}, environ={})
    try:
        return pool.client("svc").attempt(RequestSpec(method="GET", path=f"/{path}/{delay_ms}"), timeout_s)
    finally:
        pool.close()


@pytest.mark.usefixtures("busy_before_reading")
def test_an_answer_that_arrived_in_time_is_ok_although_read_late(delayed_server: int) -> None:
    outcome = _attempt(delayed_server, delay_ms=5)
    assert outcome.kind is OutcomeKind.OK and outcome.body == {"ok": True}
    assert outcome.duration_s >= 0.6  # read well after its 200 ms deadline


@pytest.mark.usefixtures("busy_before_reading")
def test_an_answer_that_arrived_after_the_deadline_is_a_timeout(delayed_server: int) -> None:
    outcome = _attempt(delayed_server, delay_ms=400)
    assert outcome.kind is OutcomeKind.TIMEOUT


@pytest.mark.usefixtures("busy_before_reading")
def test_an_answer_whose_last_bytes_arrived_after_the_deadline_is_a_timeout(delayed_server: int) -> None:
    """The timeout bounds the attempt to the last byte (contract): a head in time is not enough."""
    outcome = _attempt(delayed_server, delay_ms=630, path="split")  # just after this process reads the head
    assert outcome.kind is OutcomeKind.TIMEOUT


def test_a_slow_answer_is_a_timeout_when_nothing_else_is_late(delayed_server: int) -> None:
    assert _attempt(delayed_server, delay_ms=500).kind is OutcomeKind.TIMEOUT
    assert _attempt(delayed_server, delay_ms=5).kind is OutcomeKind.OK


class _TimerFirst:
    """A socket whose first read times out although data is waiting: what a busy gevent
    loop does when the attempt's timer and the readable socket fire in one iteration."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._timed_out = False

    def settimeout(self, seconds: float) -> None:
        self._sock.settimeout(seconds)

    def recvmsg(self, *args: Any) -> Any:
        if not self._timed_out:
            self._timed_out = True
            raise TimeoutError("timed out")
        return self._sock.recvmsg(*args)


def _connected(port: int, delay_ms: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    assert http1.enable_arrival_stamps(sock)
    sock.sendall(f"GET /after/{delay_ms} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return sock


def test_a_timer_that_fires_with_the_answer_waiting_does_not_fail_it(delayed_server: int) -> None:
    with _connected(delayed_server, 5) as sock:
        deadline = time.monotonic() + 0.2
        time.sleep(0.4)
        head = http1.read_head(_TimerFirst(sock), deadline, stamped=True)
    assert isinstance(head, http1.Head) and head.status == 200 and head.answered_in_time is True


def test_a_timer_that_fires_before_the_answer_is_a_timeout(delayed_server: int) -> None:
    with _connected(delayed_server, 400) as sock:
        deadline = time.monotonic() + 0.2
        with pytest.raises(TimeoutError):
            http1.read_head(sock, deadline, stamped=True)
