"""The Redis server the tests use: the one ``REDIS_URL`` names (127.0.0.1:6379 without
it), so runs with different servers never touch each other's; the in-process edge tests
use its db 3 unless EDGE_TEST_REDIS_URL says otherwise."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis


def redis_url_for_db(db: int) -> str:
    """Database ``db`` on the server of ``REDIS_URL`` (its password included)."""
    netloc = urlsplit(os.environ.get("REDIS_URL", "")).netloc or "127.0.0.1:6379"
    return f"redis://{netloc}/{db}"


def xdist_worker_redis_url(redis_url: str, worker: str | None) -> str:
    """``redis_url`` with a database of its own for pytest-xdist worker ``worker`` ("gw1").

    The in-process gateway keeps breakers, stats and transitions under fixed keys
    (``gateway:breaker:{shipping}``): two workers on one database force open, reset and
    flush each other's. Worker gw0 (and a run without xdist) keeps ``REDIS_URL``'s database,
    gwN takes the one 7·N further (mod 16: distinct for up to 16 workers). Those numbers are
    also tests/e2e's ``isolated_targets`` databases, which the e2e gateways flush: running
    tests/e2e under xdist is not isolated by this (nor are its PostgreSQL databases)."""
    index = int(worker[2:]) if worker and worker.startswith("gw") and worker[2:].isdigit() else 0
    if index == 0:
        return redis_url
    parts = urlsplit(redis_url)
    base = parts.path.lstrip("/")
    db = ((int(base) if base.isdigit() else 0) + 7 * index) % 16
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


EDGE_REDIS_URL = os.environ.get("EDGE_TEST_REDIS_URL") or redis_url_for_db(3)


def redis_or_skip(url: str | None = None, *, timeout_s: float = 1.0) -> redis.Redis:
    """A client on ``url`` (``REDIS_URL``; its server's db 2 without it); skips the test when
    Redis does not answer."""
    url = url or os.environ.get("REDIS_URL") or redis_url_for_db(2)
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis not reachable at {url}: {error}")
    return client


def edge_redis_or_skip() -> redis.Redis:
    """A client on ``EDGE_REDIS_URL`` with short timeouts; skips the test when Redis does not answer."""
    return redis_or_skip(EDGE_REDIS_URL, timeout_s=0.5)
