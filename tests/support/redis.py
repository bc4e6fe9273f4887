"""The Redis the in-process edge tests use (db 3 unless EDGE_TEST_REDIS_URL says otherwise)."""

from __future__ import annotations

import os

import pytest
import redis

EDGE_REDIS_URL = os.environ.get("EDGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/3")


def edge_redis_or_skip() -> redis.Redis:
    """A client on ``EDGE_REDIS_URL`` with short timeouts; skips the test when Redis does not answer."""
    client = redis.Redis.from_url(EDGE_REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable at {EDGE_REDIS_URL}: {error}")
    return client
