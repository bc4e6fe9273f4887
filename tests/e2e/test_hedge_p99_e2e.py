"""Issue 14, "Done when": hedging halves p99 when one of two replicas is slow — through
gunicorn (two gevent workers, Redis), against a service of two replicas behind one base
URL, measured side by side in one test (a ratio, not a wall-clock bound)."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.support.fake_downstream import FakeDownstream

pytestmark = pytest.mark.e2e

REQUESTS = 100  # per side; p99 is the 99th of 100 (nearest rank)
HEDGE_AFTER_MS = 20


class RoundRobinReplicas:
    """Two replicas behind one address, taken in turn as a round-robin balancer does:
    the first answers in ``FAST_S``, the second in ``SLOW_S``. The slow one looks, before
    it answers, whether the gateway has hung up on it (a hedge's cancelled loser)."""

    FAST_S = 0.005
    SLOW_S = 0.2

    def __init__(self) -> None:
        self.count = 0
        self.slow_answered = 0
        self.hung_up = 0
        self._lock = threading.Lock()

    def __call__(self, handler: Any) -> tuple[int, Any]:
        with self._lock:
            self.count += 1
            slow = self.count % 2 == 1
        if not slow:
            time.sleep(self.FAST_S)
            return 200, {"replica": "fast"}
        time.sleep(self.SLOW_S)
        readable, _, _ = select.select([handler.connection], [], [], 0)
        hung_up = bool(readable) and handler.connection.recv(1, socket.MSG_PEEK) == b""
        with self._lock:
            if hung_up:
                self.hung_up += 1
            else:
                self.slow_answered += 1
        return 200, {"replica": "slow"}


def _p(latencies: list[float], percent: int) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, -(-len(ordered) * percent // 100) - 1)]  # nearest rank


@pytest.fixture(scope="module")
def replicas() -> dict[str, RoundRobinReplicas]:
    return {"plain": RoundRobinReplicas(), "hedged": RoundRobinReplicas()}


@pytest.fixture(scope="module")
def fakes(
    module_fake_downstream: Callable[..., FakeDownstream], replicas: dict[str, RoundRobinReplicas]
) -> dict[str, FakeDownstream]:
    return {name: module_fake_downstream({"*": replica}) for name, replica in replicas.items()}


@pytest.fixture(scope="module")
def server(module_gateway_server: Callable[..., GatewayServer], fakes: dict[str, FakeDownstream]) -> GatewayServer:
    breaker = {"failure_threshold": 100000, "window_s": 60, "open_s": 30, "half_open_probes": 1}

    def service(name: str, **fields: Any) -> dict[str, Any]:
        return {"base_url": fakes[name].url, "timeout_ms": 1000, "auth": {"type": "none"}, "breaker": breaker} | fields

    def endpoint(name: str) -> dict[str, Any]:
        call = {"id": "it", "service": name, "stage": 1, "method": "GET", "path": "/it", "required": True}
        return {"name": name, "method": "GET", "path": f"/{name}", "timeout_ms": 3000, "calls": [call]} | {
            "response": {"it": "{{ it }}"}
        }

    document = {
        "version": 1,
        "layer": {"name": "Hedging", "base_path": "/v1", "auth": {"type": "none"}},
        "services": {"plain": service("plain"), "hedged": service("hedged", hedge={"after_ms": HEDGE_AFTER_MS})},
        "endpoints": [endpoint("plain"), endpoint("hedged")],
    }
    database, redis_db = isolated_targets("bench14", 10)
    return module_gateway_server(yaml.safe_dump(document), workers=2, database=database, redis_db=redis_db)


def _timed_get(server: GatewayServer, path: str) -> tuple[float, str]:
    started = time.perf_counter()
    status, _, body = server.get(path)
    elapsed = time.perf_counter() - started
    assert status == 200, body
    return elapsed, json.loads(body)["it"]["replica"]


def test_hedging_halves_p99_when_one_of_two_replicas_is_slow(
    server: GatewayServer, fakes: dict[str, FakeDownstream], replicas: dict[str, RoundRobinReplicas]
) -> None:
    for path in ("/v1/plain", "/v1/hedged"):  # connections and plans warm on both sides
        server.get(path)
    time.sleep(RoundRobinReplicas.SLOW_S + 0.3)  # the warm-up's loser has looked at its connection
    for replica in replicas.values():
        replica.count, replica.slow_answered, replica.hung_up = 0, 0, 0
    for fake in fakes.values():
        fake.hits.clear()
    latencies: dict[str, list[float]] = {"plain": [], "hedged": []}
    answered_by: dict[str, list[str]] = {"plain": [], "hedged": []}
    for _ in range(REQUESTS):  # side by side: the machine's speed drifts for both alike
        for name in ("plain", "hedged"):
            elapsed, replica = _timed_get(server, f"/v1/{name}")
            latencies[name].append(elapsed)
            answered_by[name].append(replica)
    time.sleep(RoundRobinReplicas.SLOW_S + 0.3)  # the last loser finishes sleeping and looks at its connection

    plain, hedged = latencies["plain"], latencies["hedged"]
    report = {name: [round(_p(values, q) * 1000, 1) for q in (50, 95, 99)] for name, values in latencies.items()}
    print(f"p50/p95/p99 ms: {report}")  # shown with -s
    # Without a hedge every other request waits for the slow replica ...
    assert answered_by["plain"].count("slow") == REQUESTS // 2
    assert _p(plain, 99) >= RoundRobinReplicas.SLOW_S, report
    # ... with one, every first attempt met the slow replica, and the hedge the fast one answered.
    assert answered_by["hedged"] == ["fast"] * REQUESTS
    assert fakes["hedged"].hits["/it"] == 2 * REQUESTS
    assert _p(hedged, 99) <= 0.5 * _p(plain, 99), report
    # Every loser's connection was closed by the gateway before its answer; none was read.
    assert (replicas["hedged"].hung_up, replicas["hedged"].slow_answered) == (REQUESTS, 0)
    assert (replicas["plain"].hung_up, replicas["plain"].slow_answered) == (0, REQUESTS // 2)
