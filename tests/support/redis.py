"""The Redis server the tests use: the one ``REDIS_URL`` names (127.0.0.1:6379 without
it), so runs with different servers never touch each other's; the in-process edge tests
use its db 3 unless EDGE_TEST_REDIS_URL says otherwise."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest
import redis


def redis_url_for_db(db: int) -> str:
    """Database ``db`` on the server of ``REDIS_URL`` (its password included)."""
    netloc = urlsplit(os.environ.get("REDIS_URL", "")).netloc or "127.0.0.1:6379"
    return f"redis://{netloc}/{db}"


EDGE_REDIS_URL = os.environ.get("EDGE_TEST_REDIS_URL") or redis_url_for_db(3)


def edge_redis_or_skip() -> redis.Redis:
    """A client on ``EDGE_REDIS_URL`` with short timeouts; skips the test when Redis does not answer."""
    client = redis.Redis.from_url(EDGE_REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable at {EDGE_REDIS_URL}: {error}")
    return client
