"""Fixtures for the edge (rate limits, cache): a real Redis on db 3, a key prefix
per test (deleted afterwards), and a store factory per backend so one behaviour
suite runs against the in-process store and the Redis one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

REDIS_URL = os.environ.get("EDGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {error}")
    return client


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
