"""A gateway served by Django's test client with the real edge (Redis db 3, a key
prefix per test) and a fake executor that counts runs, so tests assert what a
client sees and how often the downstream side was asked."""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
import redis
from django.conf import settings
from django.test import Client
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestration.edge.cache import ResponseCache
from orchestration.edge.client_ip import ClientIpResolver
from orchestration.edge.ratelimit import RateLimiter
from orchestration.edge.redis_boundary import RedisBoundary
from orchestration.edge.redis_cache_store import RedisCacheStore
from orchestration.edge.redis_rate_store import RedisRateStore
from orchestration.errors import Failure
from orchestration.plan import CachePolicy, ClientAuth, Endpoint, JwtSettings, Layer, Plan, Service
from orchestration.templates import compile_template
from orchestration.web import aggregate, edge
from orchestration.web.runtime import GatewayRuntime, LoadedConfig, build_runtime_parts
from tests.support.redis import edge_redis_or_skip

JWT_SECRET = "edge-tests-secret-0123456789abcdef"
JWT_ENV = "EDGE_TEST_JWT_SECRET"
BASE_URL = "http://10.9.8.7:9101"  # must never appear in a client-visible answer
# A shared, cached endpoint tagged "catalog": what a webhook's {"tags": ["catalog"]} purges.
CATALOG = Endpoint(
    name="catalog",
    method="GET",
    path="/catalog",
    calls=(),
    response=compile_template({}),
    cache=CachePolicy(ttl_s=60, scope="shared", tags=(compile_template("catalog"),)),
)


@dataclass
class Ran:
    """What the executor returns on success (duck-typed like ``executor.Success``)."""

    body: Any
    partial: bool = False
    failed_services: tuple[str, ...] = ()


@dataclass
class FakeExecutor:
    """Answers per endpoint name; ``runs`` counts plan runs (downstream work)."""

    answers: dict[str, Callable[[Any], Ran | Failure]] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, endpoint: Endpoint, context: Any) -> Ran | Failure:
        with self.lock:
            self.runs[endpoint.name] = self.runs.get(endpoint.name, 0) + 1
        if self.delay_s:
            time.sleep(self.delay_s)
        answer = self.answers.get(endpoint.name)
        return answer(context) if answer else Ran({"path": dict(context.path_params), "user": context.user.get("sub")})


def token(sub: str) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 300}, JWT_SECRET, algorithm="HS256")


def auth(sub: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token(sub)}"}


def make_plan(*endpoints: Endpoint, rate_limits: tuple[Any, ...] = ()) -> Plan:
    layer = Layer(
        name="Edge tests",
        base_path="/v1",
        auth=ClientAuth(type="jwt", jwt=JwtSettings(algorithms=("HS256",), secret_env=JWT_ENV)),
        rate_limits=rate_limits,
    )
    return Plan(version="v1", layer=layer, services={"svc": Service("svc", BASE_URL)}, endpoints=endpoints)


@dataclass
class Gateway:
    executor: FakeExecutor
    redis: redis.Redis
    prefix: str
    install: Callable[[Plan], None]

    def client(self) -> Client:
        return Client()


def build_edge(client: redis.Redis, prefix: str, plan: Callable[[], Plan]) -> edge.Edge:
    boundary = RedisBoundary()
    return edge.Edge(
        limiter=RateLimiter(RedisRateStore(client, boundary), prefix=prefix + "rl:"),
        cache=ResponseCache(RedisCacheStore(client, boundary, prefix=prefix + "cache:")),
        client_ips=ClientIpResolver(["10.0.0.0/8"]),
        plan=plan,
    )


@pytest.fixture
def redis_db() -> redis.Redis:
    return edge_redis_or_skip()


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Restore whatever runtime and edge were installed before the test."""
    monkeypatch.setenv(JWT_ENV, JWT_SECRET)
    importlib.import_module(settings.ROOT_URLCONF)  # runs wiring.install() now, not over our install
    runtime_before, edge_before = aggregate._runtime_source, edge.installed_edge()
    yield
    aggregate.install_runtime_source(runtime_before)  # type: ignore[arg-type]
    edge.install_edge(edge_before)


@pytest.fixture
def gateway(redis_db: redis.Redis, installed: None) -> Iterator[Gateway]:
    prefix = f"test:web:{uuid.uuid4().hex[:12]}:"
    executor = FakeExecutor()
    current: dict[str, GatewayRuntime] = {}

    def install(plan: Plan) -> None:
        router, authenticator = build_runtime_parts(LoadedConfig(plan=plan, api_keys={}))
        current["runtime"] = GatewayRuntime(plan, router, authenticator, executor, pool=None)
        aggregate.install_runtime_source(lambda: current["runtime"])
        edge.install_edge(build_edge(redis_db, prefix, lambda: current["runtime"].plan))

    yield Gateway(executor, redis_db, prefix, install)
    keys = list(redis_db.scan_iter(match=prefix + "*", count=1000))
    if keys:
        redis_db.delete(*keys)


def dead_redis(port: int) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, socket_connect_timeout=0.25, socket_timeout=0.25, retry=Retry(NoBackoff(), 0)
    )
