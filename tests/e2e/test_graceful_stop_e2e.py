"""Contract section 9, graceful stop, end to end: two gunicorn instances (the production
config) behind a real HAProxy that polls their /readyz; a steady load runs through the
balancer while one instance gets SIGTERM. Its /readyz answers 503 at once, the balancer
takes it out while it still accepts, a long request in flight on it finishes, the process
exits within GATEWAY_DRAIN_S, and not one request of the load failed.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.e2e.deploy_support import SteadyLoad
from tests.support.fake_downstream import FakeDownstream, free_port
from tests.support.haproxy import start_haproxy

pytestmark = pytest.mark.e2e

BASE = "/v1/deploy"
LONG_S = 3.0  # the in-flight request on the stopping instance
ACCEPT_S = 2.0  # GATEWAY_DRAIN_ACCEPT_S of the instances
DRAIN_S = 12.0  # GATEWAY_DRAIN_S of the instances


def config_yaml(downstream_url: str) -> str:
    def endpoint(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "method": "GET",
            "path": f"/{name}",
            "purpose": f"A {name} answer",
            "timeout_ms": 8000,
            "calls": [{"id": "work", "service": "work", "stage": 1, "method": "GET", "path": f"/{name}"}],
            "response": {"kind": name, "value": "{{ work.value }}"},
        }

    return json.dumps(
        {
            "version": 1,
            "layer": {"name": "Deploy", "owner": "Platform Team", "base_path": BASE, "auth": {"type": "none"}},
            "services": {"work": {"base_url": downstream_url, "owner": "Work Team", "timeout_ms": 6000}},
            "endpoints": [endpoint("quick"), endpoint("long")],
        }
    )


def sleeping(seconds: float, value: str) -> Callable[[Any], tuple[int, Any]]:
    def answer(_: Any) -> tuple[int, Any]:
        time.sleep(seconds)
        return 200, {"value": value}

    return answer


def test_stopping_one_of_two_instances_under_load_loses_no_request(
    tmp_path: Path, gateway_server: Callable[..., GatewayServer], fake_downstream: Callable[..., FakeDownstream]
) -> None:
    work = fake_downstream({"/quick": sleeping(0.05, "q"), "/long": sleeping(LONG_S, "l")})
    database, redis_db = isolated_targets("deploy", 7)
    drain = {"GATEWAY_DRAIN_ACCEPT_S": str(ACCEPT_S), "GATEWAY_DRAIN_S": str(DRAIN_S)}
    first = gateway_server(config_yaml(work.url), drain, workers=2, database=database, redis_db=redis_db)
    second = gateway_server(config_yaml(work.url), drain, workers=2, database=database, redis_db=redis_db)
    servers = [("first", "127.0.0.1", int(first.env["PORT"])), ("second", "127.0.0.1", int(second.env["PORT"]))]
    proxy = start_haproxy(tmp_path, ("127.0.0.1", free_port()), servers)
    try:
        proxy.wait_until({"first": "UP", "second": "UP"})
        quick = {"kind": "quick", "value": "q"}
        with SteadyLoad([proxy.url], [f"{BASE}/quick"], expect=lambda reply: reply.json() == quick) as load:
            time.sleep(2.0)
            assert all(int(row["stot"]) > 0 for row in proxy.show_stat().values()), "both instances serve"
            long_reply: dict[str, Any] = {}

            def long_request() -> None:
                try:
                    long_reply["reply"] = httpx.get(first.base_url + f"{BASE}/long", timeout=15)
                except httpx.HTTPError as error:
                    long_reply["error"] = repr(error)
                long_reply["done_at"] = time.monotonic()

            long_thread = threading.Thread(target=long_request)
            long_thread.start()
            time.sleep(0.5)  # the long request is in flight on the first instance
            signalled_at = time.monotonic()
            first.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            ready_status, _, ready_body = first.get("/readyz")  # a new connection, while it still accepts
            assert (ready_status, json.loads(ready_body)["status"]) == (503, "draining")
            assert second.get("/readyz")[0] == 200
            proxy.wait_until({"first": "DOWN", "second": "UP"}, timeout_s=ACCEPT_S)
            sent_at_signal = load.total()
            first.process.wait(timeout=DRAIN_S + 5)
            exited_at = time.monotonic()
            time.sleep(1.0)  # the load goes on against the one instance left
        long_thread.join(timeout=15)
    finally:
        proxy.stop()

    assert load.failures == [], f"{len(load.failures)} failed of {load.total()}: {load.failures[:5]}"
    assert load.total() - sent_at_signal > 20, "the load kept running through the stop"
    assert "error" not in long_reply, long_reply
    assert long_reply["reply"].status_code == 200
    assert long_reply["reply"].json() == {"kind": "long", "value": "l"}
    assert long_reply["done_at"] <= exited_at, "the instance waited for its request in flight"
    assert exited_at - signalled_at < DRAIN_S
    assert first.process.returncode == 0
    assert work.hits["/long"] == 1
