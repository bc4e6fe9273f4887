"""Fixtures for the edge (rate limits, cache): a real Redis on db 3, a key prefix
per test (deleted afterwards), and a store factory per backend so one behaviour
suite runs against the in-process store and the Redis one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from orchestration.edge.cache_store import CacheStore, InProcessCacheStore
from orchestration.edge.redis_boundary import RedisBoundary
from orchestration.edge.redis_cache_store import RedisCacheStore
from tests.support.redis import edge_redis_or_skip


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    return edge_redis_or_skip()


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    prefix = f"test:edge:{uuid.uuid4().hex[:12]}:"
    yield prefix
    if "redis_client" in request.fixturenames:
        client: redis.Redis = request.getfixturevalue("redis_client")
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)


class FakeWallClock:
    """Wall time that moves only when a test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeWallClock:
    return FakeWallClock()


@pytest.fixture(params=["memory", "redis"])
def cache_store(request: pytest.FixtureRequest, clock: FakeWallClock, key_prefix: str) -> CacheStore:
    """A cache store of each backend: one behaviour suite runs against both."""
    if request.param == "memory":
        return InProcessCacheStore(clock=clock)
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisCacheStore(client, RedisBoundary(), prefix=key_prefix, clock=clock)
