"""/readyz checks the database and Redis at most once a second per process, however often it is hit."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver

from orchestration.clock import FakeClock
from orchestration.web import health
from orchestration.web.readiness import ReadinessProbe
from tests.support.redis import edge_redis_or_skip


class Counted:
    """A check that counts its runs (and may take a while, like a slow database)."""

    def __init__(self, result: bool = True, delay_s: float = 0.0) -> None:
        self.runs, self.result, self.delay_s = 0, result, delay_s

    def __call__(self) -> bool:
        self.runs += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.result


def test_many_hits_within_a_second_run_each_check_once() -> None:
    clock, database, redis = FakeClock(), Counted(), Counted()
    probe = ReadinessProbe({"database": database, "redis": redis}, clock=clock, ttl_s=1.0)

    answers = [probe.current() for _ in range(100)]
    clock.advance(0.9)
    answers += [probe.current() for _ in range(100)]

    assert (database.runs, redis.runs) == (1, 1)
    assert {tuple(a.checks.items()) for a in answers} == {(("database", "ok"), ("redis", "ok"))}
    clock.advance(0.2)  # past the second: the next hit checks again, once
    for _ in range(100):
        probe.current()
    assert (database.runs, redis.runs) == (2, 2)


def test_a_failing_check_is_named_and_its_recovery_seen_after_the_second() -> None:
    clock, redis = FakeClock(), Counted(result=False)
    probe = ReadinessProbe({"database": Counted(), "redis": redis}, clock=clock)

    assert probe.current().failing == ("redis",)
    redis.result = True
    assert probe.current().failing == ("redis",)  # the cached answer, at most a second old
    clock.advance(1.01)
    assert probe.current().failing == ()


def test_concurrent_hits_during_a_slow_check_share_its_answer() -> None:
    database = Counted(delay_s=0.2)
    probe = ReadinessProbe({"database": database}, clock=FakeClock())
    answers: list[Any] = []
    threads = [threading.Thread(target=lambda: answers.append(probe.current())) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert database.runs == 1
    assert len(answers) == 20 and all(a.checks == {"database": "ok"} for a in answers)


class CountingRedis:
    """The real Redis client, with its PINGs counted."""

    def __init__(self, client: Any) -> None:
        self.client, self.pings = client, 0

    def ping(self) -> Any:
        self.pings += 1
        return self.client.ping()


@pytest.fixture
def production_probe_on_a_fake_clock() -> Iterator[tuple[FakeClock, CountingRedis]]:
    """The probe the gateway serves (health.readiness_probe: real database, real Redis) on a
    clock the test moves."""
    clock, redis = FakeClock(), CountingRedis(edge_redis_or_skip())
    previous = _install(health.readiness_probe(redis_client=redis, clock=clock))
    yield clock, redis
    health.install_readiness(previous)


def _install(probe: ReadinessProbe) -> ReadinessProbe:
    get_resolver().url_patterns  # noqa: B018 - the URLconf's import installs the production probe: first
    return health.install_readiness(probe)


@pytest.mark.django_db
def test_a_flood_of_readyz_makes_one_database_query_and_one_redis_ping_per_second(
    production_probe_on_a_fake_clock: tuple[FakeClock, CountingRedis],
) -> None:
    clock, redis = production_probe_on_a_fake_clock
    client = Client()

    with CaptureQueriesContext(connection) as queries:
        replies = [client.get("/readyz") for _ in range(30)]
        clock.advance(1.5)
        replies += [client.get("/readyz") for _ in range(30)]

    assert {r.status_code for r in replies} == {200}
    assert replies[-1].json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert replies[-1]["Cache-Control"] == "no-store"
    assert [q["sql"] for q in queries.captured_queries] == ["SELECT 1", "SELECT 1"]
    assert redis.pings == 2


@pytest.mark.django_db
def test_readyz_names_redis_when_its_ping_fails() -> None:
    class Down:
        def ping(self) -> bool:
            raise ConnectionError("redis is down")

    previous = _install(health.readiness_probe(redis_client=Down(), clock=FakeClock()))
    try:
        reply = Client().get("/readyz")
    finally:
        health.install_readiness(previous)

    assert reply.status_code == 503
    assert reply.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unreachable"},
        "failing": ["redis"],
    }
