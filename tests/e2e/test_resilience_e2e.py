"""Contract section 7 through gunicorn (two gevent workers sharing Redis), against fake
services on loopback: the deadline header, Retry-After of a 503, the rate-based breaker
and the retry budget under load (issue 14)."""

from __future__ import annotations

import itertools
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.support.fake_downstream import FakeDownstream

pytestmark = pytest.mark.e2e

LOAD = 120  # requests per endpoint in the budget test
NEVER_OPENS = {"failure_threshold": 100000, "window_s": 60, "open_s": 30, "half_open_probes": 1}


def _service(url: str, **fields: Any) -> dict[str, Any]:
    return {"base_url": url, "timeout_ms": 1000, "auth": {"type": "none"}, "breaker": NEVER_OPENS, **fields}


def _endpoint(name: str, service: str, *, required: bool = True) -> dict[str, Any]:
    call = {"id": "it", "service": service, "stage": 1, "method": "GET", "path": "/it", "required": required}
    if not required:
        call["fallback"] = {"fallback": True}
    return {
        "name": name,
        "method": "GET",
        "path": f"/{name}",
        "timeout_ms": 3000,
        "calls": [call],
        "response": {"it": "{{ it }}"},
    }


def _stale_endpoint() -> dict[str, Any]:
    endpoint = _endpoint("stale", "stale", required=False)
    endpoint["calls"][0] |= {"query": {"zip": "{{ request.query.zip }}"}, "stale_if_error_s": 300}
    return endpoint


class _TwoReplicas:
    """One replica of two is slow: odd requests take ``SLOW_S``, even ones answer at once.
    A slow one notes whether the gateway hung up on it before it answered."""

    SLOW_S = 0.8

    def __init__(self) -> None:
        self.count = 0
        self.hung_up = 0
        self._lock = threading.Lock()

    def __call__(self, handler: Any) -> tuple[int, Any]:
        with self._lock:
            self.count += 1
            slow = self.count % 2 == 1
        if not slow:
            return 200, {"replica": "fast"}
        time.sleep(self.SLOW_S)
        connection = handler.connection
        readable, _, _ = select.select([connection], [], [], 0)
        if readable and connection.recv(1, socket.MSG_PEEK) == b"":
            with self._lock:
                self.hung_up += 1
        return 200, {"replica": "slow"}


_REPLICAS = _TwoReplicas()


def _contract_endpoint(action: str) -> dict[str, Any]:
    schema = {"type": "object", "required": ["it"], "properties": {"it": {"type": "object", "required": ["total"]}}}
    schema["properties"]["it"]["properties"] = {"total": {"type": "number"}}
    return _endpoint(f"contract-{action}", "contract") | {"response_schema": schema, "on_schema_violation": action}


@pytest.fixture(scope="module")
def fakes(module_fake_downstream: Callable[..., FakeDownstream]) -> dict[str, FakeDownstream]:
    busy_answers = itertools.cycle([(503, {"busy": True}, {"Retry-After": "1"}), (200, {"ok": True})])
    return {
        "deadline": module_fake_downstream({"*": (200, {"ok": True})}),
        "busy": module_fake_downstream({"*": lambda handler: next(busy_answers)}),
        "flaky": module_fake_downstream({"*": (500, {"down": True})}),
        "budgeted": module_fake_downstream({"*": (503, {"down": True})}),
        "unbudgeted": module_fake_downstream({"*": (503, {"down": True})}),
        "hedged": module_fake_downstream({"*": _REPLICAS}),
        "contract": module_fake_downstream({"*": (200, {"total": "12.50"})}),
        "stale": module_fake_downstream({"*": lambda handler: (200, {"zip": parse_qs(urlsplit(handler.path).query)})}),
    }


@pytest.fixture(scope="module")
def server(module_gateway_server: Callable[..., GatewayServer], fakes: dict[str, FakeDownstream]) -> GatewayServer:
    retry = {"max_retries": 2, "backoff": "none", "retry_on": ["5xx"]}
    document = {
        "version": 1,
        "layer": {"name": "Resilience", "base_path": "/v1", "auth": {"type": "none"}},
        "services": {
            "deadline": _service(fakes["deadline"].url, timeout_ms=400, deadline_header="X-Request-Deadline-Ms"),
            "busy": _service(fakes["busy"].url, retry={"max_retries": 1, "base_ms": 10, "retry_on": ["5xx"]}),
            "flaky": _service(
                fakes["flaky"].url,
                breaker={**NEVER_OPENS, "open_s": 300, "min_calls": 10, "failure_rate": 50},
            ),
            "budgeted": _service(fakes["budgeted"].url, retry={**retry, "budget_percent": 20, "budget_min_per_s": 1}),
            "unbudgeted": _service(fakes["unbudgeted"].url, retry=retry),
            "stale": _service(fakes["stale"].url),
            "contract": _service(fakes["contract"].url),
            "hedged": _service(fakes["hedged"].url, hedge={"after_ms": 50}),
        },
        "endpoints": [
            _endpoint("deadline", "deadline"),
            _endpoint("busy", "busy"),
            _endpoint("flaky", "flaky", required=False),
            _endpoint("budgeted", "budgeted", required=False),
            _endpoint("unbudgeted", "unbudgeted", required=False),
            _stale_endpoint(),
            _endpoint("hedged", "hedged"),
            _contract_endpoint("log"),
            _contract_endpoint("fail"),
        ],
    }
    database, redis_db = isolated_targets("resil", 6)
    return module_gateway_server(yaml.safe_dump(document), workers=2, database=database, redis_db=redis_db)


def _metric(server: GatewayServer, decision: str, service: str) -> float:
    status, _, text = server.get("/metrics")
    assert status == 200
    total = 0.0
    for line in text.decode().splitlines():
        labels = (f'decision="{decision}"', f'service="{service}"')
        if line.startswith("gateway_resilience_decisions_total{") and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_each_attempt_says_how_many_ms_it_has_left(server: GatewayServer, fakes) -> None:
    status, _, _ = server.get("/v1/deadline")
    assert status == 200
    sent = int(fakes["deadline"].headers["/it"][-1]["x-request-deadline-ms"])
    assert 0 < sent <= 400  # the call's own timeout bounds it


def test_a_503_retry_after_is_honoured_and_counted(server: GatewayServer, fakes) -> None:
    status, _, body = server.get("/v1/busy")
    assert (status, yaml.safe_load(body)) == (200, {"it": {"ok": True}})
    assert fakes["busy"].hits["/it"] == 2
    assert _metric(server, "retry_after_waited", "busy") == 1


def test_the_rate_breaker_opens_for_every_worker(server: GatewayServer, fakes) -> None:
    for _ in range(10):
        status, _, body = server.get("/v1/flaky")
        assert status == 200 and b'"partialData":true' in body.replace(b" ", b"")
    assert fakes["flaky"].hits["/it"] == 10  # 10 calls, all failed: 100 % >= 50 % of min_calls
    time.sleep(0.6)  # the contract gives every process 0.5 s to learn of an opening
    for _ in range(10):
        assert server.get("/v1/flaky")[0] == 200
    assert fakes["flaky"].hits["/it"] == 10  # open: no further call reached it, from either worker


def test_the_retry_budget_holds_a_failing_service_under_load(server: GatewayServer, fakes) -> None:
    def load(name: str) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: server.get(f"/v1/{name}")[0], range(LOAD)))
        assert statuses == [200] * LOAD

    load("unbudgeted")
    load("budgeted")
    assert fakes["unbudgeted"].hits["/it"] == 3 * LOAD  # (1 + max_retries) x
    retries = fakes["budgeted"].hits["/it"] - LOAD
    assert 0 < retries <= 0.2 * LOAD + 10  # (1 + 20 %) x, plus the minimum of 1/s over 10 s
    assert _metric(server, "retry_over_budget", "budgeted") >= LOAD - retries


def test_stale_results_stand_in_when_the_service_dies(server: GatewayServer, fakes) -> None:
    for _ in range(4):  # kept in Redis, whichever worker answered
        status, _, body = server.get("/v1/stale?zip=75001")
        assert (status, json.loads(body)) == (200, {"it": {"zip": {"zip": ["75001"]}}})
    fakes["stale"].routes["*"] = (503, {"down": True})
    for _ in range(6):  # served by both workers: every one finds the kept result
        status, _, body = server.get("/v1/stale?zip=75001")
        assert (status, json.loads(body)) == (200, {"it": {"zip": {"zip": ["75001"]}}, "staleServices": ["stale"]})
    status, _, body = server.get("/v1/stale?zip=10115")  # never answered for this request: its fallback
    assert (status, json.loads(body)) == (
        200,
        {"it": {"fallback": True}, "partialData": True, "failedServices": ["stale"]},
    )
    assert fakes["stale"].hits["/it"] == 11
    assert _metric(server, "stale_served", "stale") == 6


def _violations(server: GatewayServer, endpoint: str, field: str, action: str) -> float:
    labels = (f'endpoint="{endpoint}"', f'field="{field}"', f'action="{action}"')
    lines = server.get("/metrics")[2].decode().splitlines()
    found = [line for line in lines if line.startswith("gateway_response_schema_violations_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in found if all(label in line for label in labels))


def test_a_schema_violation_is_logged_or_failed_as_configured(server: GatewayServer, fakes) -> None:
    status, _, body = server.get("/v1/contract-log")  # log: served as it is, counted
    assert (status, json.loads(body)) == (200, {"it": {"total": "12.50"}})
    status, headers, body = server.get("/v1/contract-fail")  # fail: the contract's envelope
    error = json.loads(body)["error"]
    assert (status, error["code"], json.loads(body)["data"]) == (502, "CONTRACT_VIOLATION", {})
    assert error["requestId"] == headers["X-Request-ID"]
    assert _violations(server, "contract-log", "it.total", "log") == 1
    assert _violations(server, "contract-fail", "it.total", "fail") == 1
    fakes["contract"].routes["*"] = (200, {"total": 12.5})  # the service is fixed: both conform
    assert server.get("/v1/contract-fail")[0] == 200
    assert _violations(server, "contract-fail", "it.total", "fail") == 1


def test_a_slow_replica_is_hedged_and_the_loser_hung_up_on(server: GatewayServer, fakes) -> None:
    for _ in range(6):  # each request's first attempt meets the slow replica, its hedge the fast one
        status, _, body = server.get("/v1/hedged")
        assert (status, json.loads(body)) == (200, {"it": {"replica": "fast"}})
    assert fakes["hedged"].hits["/it"] == 12
    time.sleep(_TwoReplicas.SLOW_S + 0.4)  # the slow replica finishes sleeping, then looks at its connection
    assert _REPLICAS.hung_up == 6  # every loser's connection was closed by the gateway, none kept for reuse
    assert _metric(server, "hedge_fired", "hedged") == 6
    assert _metric(server, "hedge_won", "hedged") == 6
