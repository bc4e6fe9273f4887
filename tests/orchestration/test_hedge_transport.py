"""Hedging over the real transport (``Urllib3Transport``): the first attempt's own read notices
``after_ms`` (no timer per call, issue 14), a connect still arms one, the loser is hung up on.
A loopback server whose slow answer waits until the test releases it (or the gateway hangs up).

Which request is slow is told by its connection (the order the kernel queued the connects in,
and the request's place on its connection), not by the order the server's threads get to
the requests: under CPU load a hedge can be read before the first attempt it races.
``after_ms`` is far above scheduling noise where the first attempt must answer, or connect,
before the hedge is due."""

from __future__ import annotations

import http.server
import select
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from orchestration.clock import SystemClock
from orchestration.downstream import DownstreamPool
from orchestration.executor import Executor, Success
from orchestration.plan import HedgePolicy, Service
from orchestration.spawn import Running, ThreadSpawner
from tests.orchestration.engine_kit import Recorder, call, endpoint, plan


class _Replicas(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, slow_at: int | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.slow_at = slow_at  # which request on the first connection (0: its first) answers slowly
        self.hits = 0
        self.hung_up = 0  # slow answers whose connection the gateway closed before they were sent
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.accepted: list[socket.socket] = []  # connections in the order they were accepted

    def process_request(self, request: Any, client_address: Any) -> None:
        self.accepted.append(request)  # the accepting thread, in the kernel's queue order
        super().process_request(request, client_address)

    def wait_for_hang_up(self, count: int) -> None:
        for _ in range(1000):  # 10 s at most: the server's thread notices the closed connection
            if self.hung_up >= count:
                return
            threading.Event().wait(0.01)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Replicas

    def log_message(self, format: str, *args: object) -> None:
        return None

    requests_on_connection = 0

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.hits += 1
        first_connection = self.server.accepted[0] is self.connection
        index, self.requests_on_connection = self.requests_on_connection, self.requests_on_connection + 1
        replica = b"fast"
        if first_connection and index == self.server.slow_at:
            replica = b"slow"
            if self._hung_up_before_release():
                with self.server.lock:
                    self.server.hung_up += 1
                self.close_connection = True
                return
        body = b'{"replica": "%s"}' % replica
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _hung_up_before_release(self) -> bool:
        for _ in range(1000):  # 10 s at most
            if self.server.release.wait(0.01):
                return False
            readable, _, _ = select.select([self.connection], [], [], 0)
            if readable and not self.connection.recv(1, socket.MSG_PEEK):
                return True
        return False


@pytest.fixture
def replicas() -> Iterator[Callable[[int | None], _Replicas]]:
    servers: list[_Replicas] = []

    def start(slow_at: int | None) -> _Replicas:
        server = _Replicas(slow_at)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.release.set()
        server.shutdown()
        server.server_close()


AFTER_MS = 300  # a first attempt answers (or connects) far sooner, even on a loaded machine


class _CountingSpawner(ThreadSpawner):
    """Threads, and how many timers were armed (``later``)."""

    def __init__(self) -> None:
        self.timers = 0

    def later(self, delay_s: float, task: Callable[[], Any]) -> Running[Any]:
        self.timers += 1
        return super().later(delay_s, task)

    def start(self, tasks: Sequence[Callable[[], Any]]) -> Running[Any]:
        return super().start(tasks)


def _gateway(server: _Replicas) -> tuple[Executor, Recorder, _CountingSpawner, DownstreamPool]:
    host, port = server.server_address[:2]
    services = [Service(name="inventory", base_url=f"http://{host}:{port}", hedge=HedgePolicy(after_ms=AFTER_MS))]
    recorder = Recorder()
    the_plan = plan(services)
    pool = DownstreamPool(the_plan.services, clock=SystemClock(), observer=recorder, environ={})
    spawner = _CountingSpawner()
    return Executor(the_plan, pool, observer=recorder, spawner=spawner), recorder, spawner, pool


def test_a_slow_answer_on_a_pooled_connection_is_hedged_from_the_read_and_the_loser_hung_up_on(
    replicas, request_context
):
    server = replicas(1)  # request 0 opens the connection; request 1, on it, is slow (the hedge: a new one)
    executor, recorder, spawner, pool = _gateway(server)
    try:
        warm = executor.run(endpoint(call("inventory")), request_context)
        armed = spawner.timers
        result = executor.run(endpoint(call("inventory")), request_context)
    finally:
        pool.close()
    assert isinstance(warm, Success) and isinstance(result, Success)
    assert result.body == {"inventory": {"replica": "fast"}}
    assert [d.decision for d in recorder.decisions] == ["hedge_fired", "hedge_won"]
    assert spawner.timers == armed + 1  # the hedge itself, started by the read (a timer of 0)
    assert server.hits == 3
    server.wait_for_hang_up(1)
    assert server.hung_up == 1


def test_a_first_attempt_that_connects_is_hedged_by_the_timer_its_connect_armed(replicas, request_context):
    server = replicas(0)
    executor, recorder, _, pool = _gateway(server)
    try:
        result = executor.run(endpoint(call("inventory")), request_context)
    finally:
        pool.close()
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "fast"}}
    assert [d.decision for d in recorder.decisions] == ["hedge_fired", "hedge_won"]
    assert server.hits == 2


def test_an_answer_in_time_over_a_pooled_connection_arms_no_timer(replicas, request_context):
    server = replicas(None)
    executor, recorder, spawner, pool = _gateway(server)
    try:
        first = executor.run(endpoint(call("inventory")), request_context)
        assert spawner.timers == 1  # the first attempt connected: a connect arms the hedge's timer
        again = [executor.run(endpoint(call("inventory")), request_context) for _ in range(3)]
    finally:
        pool.close()
    assert all(isinstance(result, Success) for result in [first, *again])
    assert spawner.timers == 1 and server.hits == 4  # the pooled connection: the read notices, no timer
    assert recorder.decisions == []
