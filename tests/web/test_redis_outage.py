"""Redis stopped while serving: correct uncached answers, limits not enforced, no 5xx
from the gateway itself. The test runs its own redis-server and kills it mid-test."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
import redis
from django.test import Client

from orchestration.edge.cache import ResponseCache
from orchestration.edge.client_ip import ClientIpResolver
from orchestration.edge.edge_metrics import NullEdgeMetrics
from orchestration.edge.ratelimit import RateLimiter
from orchestration.edge.redis_boundary import RedisBoundary
from orchestration.edge.redis_cache_store import RedisCacheStore
from orchestration.edge.redis_rate_store import RedisRateStore
from orchestration.edge.webhook_signature import sign
from orchestration.plan import RateLimitRule
from orchestration.web import aggregate, edge
from orchestration.web.runtime import GatewayRuntime, LoadedConfig, build_runtime_parts
from tests.support.fake_downstream import free_port
from tests.web.conftest import CATALOG, FakeExecutor, Ran, auth, dead_redis, make_plan

SECRET = "outage-webhook-secret-0123456789"


class CountingMetrics(NullEdgeMetrics):
    def __init__(self) -> None:
        self.store_errors: list[str] = []

    def on_store_error(self, store: str, error: Exception) -> None:
        self.store_errors.append(store)


@pytest.fixture
def redis_process() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    port = free_port()
    args = [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--daemonize", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = dead_redis(port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.RedisError:
            time.sleep(0.02)
    yield process, port
    process.kill()
    process.wait(timeout=5)


def test_redis_stopped_while_serving(
    redis_process: tuple[subprocess.Popen[bytes], int], installed: None, settings: Any
) -> None:
    process, port = redis_process
    settings.GATEWAY = {**settings.GATEWAY, "WEBHOOK_SECRET": SECRET}
    runs = count(1)
    executor = FakeExecutor(answers={"catalog": lambda ctx: Ran({"items": ["a", "b"], "run": next(runs)})})
    plan = make_plan(CATALOG, rate_limits=(RateLimitRule("user", 3, 60),))
    router, authenticator = build_runtime_parts(LoadedConfig(plan=plan, api_keys={}))
    runtime = GatewayRuntime(plan, router, authenticator, executor, pool=None)
    aggregate.install_runtime_source(lambda: runtime)
    client_redis, boundary, metrics = dead_redis(port), RedisBoundary(), CountingMetrics()
    edge.install_edge(
        edge.Edge(
            limiter=RateLimiter(RedisRateStore(client_redis, boundary), metrics=metrics),
            cache=ResponseCache(RedisCacheStore(client_redis, boundary), metrics=metrics),
            client_ips=ClientIpResolver(),
            plan=lambda: plan,
        )
    )
    client = Client()
    before = [client.get("/v1/catalog", **auth("alice")) for _ in range(2)]
    assert [(r.status_code, r["X-Cache"], json.loads(r.content)["run"]) for r in before] == [
        (200, "MISS", 1),
        (200, "HIT", 1),
    ]
    assert before[1]["RateLimit-Remaining"] == "1"

    process.kill()
    process.wait(timeout=5)

    during = [client.get("/v1/catalog", **auth("alice")) for _ in range(4)]  # 6 in all: over the limit of 3
    assert [(r.status_code, r["X-Cache"], json.loads(r.content)) for r in during] == [
        (200, "MISS", {"items": ["a", "b"], "run": n}) for n in (2, 3, 4, 5)
    ]
    assert not any(r.has_header("RateLimit-Limit") for r in during)  # not enforced, and not pretended
    assert executor.runs == {"catalog": 5}
    assert {"rate_limit", "cache"} <= set(metrics.store_errors)

    body = b'{"tags": ["catalog"]}'
    webhook = client.post(
        "/webhooks/invalidate", data=body, content_type="application/json", HTTP_X_GATEWAY_SIGNATURE=sign(body, SECRET)
    )
    assert (webhook.status_code, webhook.json()["error"]["code"], webhook["Retry-After"]) == (503, "OVERLOADED", "5")
