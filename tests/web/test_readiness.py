"""/readyz checks the database and Redis at most once a second per process, however often it is
hit, and the database over one connection of its own that it keeps (and replaces when it breaks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.utils import load_backend
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver

from orchestration.clock import FakeClock
from orchestration.web import health
from orchestration.web.readiness import ReadinessProbe
from tests.support.postgres import backends_on_test_database
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


class Connections:
    """What ``DatabaseCheck`` connects with: real connections to the test database,
    recorded, each logging its queries."""

    def __init__(self, settings_dict: dict[str, Any] | None = None) -> None:
        self.settings_dict = settings_dict
        self.made: list[BaseDatabaseWrapper] = []

    def __call__(self) -> BaseDatabaseWrapper:
        if self.settings_dict is None:
            wrapper = connections.create_connection("default")
        else:
            wrapper = load_backend(self.settings_dict["ENGINE"]).DatabaseWrapper(self.settings_dict, "default")
        wrapper.force_debug_cursor = True
        self.made.append(wrapper)
        return wrapper

    def queries(self) -> list[str]:
        return [query["sql"] for wrapper in self.made for query in wrapper.queries]


@dataclass
class Probe:
    clock: FakeClock
    redis: CountingRedis
    connections: Connections
    check: health.DatabaseCheck


@pytest.fixture
def production_probe_on_a_fake_clock() -> Iterator[Probe]:
    """The probe the gateway serves (health.readiness_probe over a DatabaseCheck: real
    database, real Redis) on a clock the test moves, with its connections recorded."""
    made = Connections()
    probe = Probe(FakeClock(), CountingRedis(edge_redis_or_skip()), made, health.DatabaseCheck(made))
    previous = _install(health.readiness_probe(database=probe.check, redis_client=probe.redis, clock=probe.clock))
    yield probe
    health.install_readiness(previous)
    probe.check.close()


def _install(probe: ReadinessProbe) -> ReadinessProbe:
    get_resolver().url_patterns  # noqa: B018 - the URLconf's import installs the production probe: first
    return health.install_readiness(probe)


@pytest.mark.django_db
def test_a_flood_of_readyz_makes_one_database_query_and_one_redis_ping_per_second(
    production_probe_on_a_fake_clock: Probe,
) -> None:
    probe = production_probe_on_a_fake_clock
    client = Client()

    with CaptureQueriesContext(connection) as request_queries:
        replies = [client.get("/readyz") for _ in range(30)]
        probe.clock.advance(1.5)
        replies += [client.get("/readyz") for _ in range(30)]

    assert {r.status_code for r in replies} == {200}
    assert replies[-1].json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert replies[-1]["Cache-Control"] == "no-store"
    assert probe.connections.queries() == ["SELECT 1", "SELECT 1"]  # on the probe's own connection
    assert len(probe.connections.made) == 1
    assert request_queries.captured_queries == []  # none on the request's
    assert probe.redis.pings == 2


def _terminate(pid: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])


def _postgres_or_skip() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL backends")


@pytest.mark.django_db
def test_refreshes_over_several_seconds_keep_one_database_connection(
    production_probe_on_a_fake_clock: Probe,
) -> None:
    _postgres_or_skip()
    probe, client = production_probe_on_a_fake_clock, Client()
    before = backends_on_test_database()  # the test's own connection, and whatever else is connected

    probe_backends = []
    for _ in range(8):  # eight refreshes, 1.5 s apart on the probe's clock
        assert [client.get("/readyz").status_code for _ in range(5)] == [200] * 5
        probe_backends.append(backends_on_test_database() - before)
        probe.clock.advance(1.5)

    assert len(probe.connections.queries()) == 8
    (backend,) = probe_backends[0]  # one connection of its own, not the request's
    assert probe_backends == [{backend}] * 8  # the same one all along, open between refreshes


@pytest.mark.django_db
def test_a_connection_the_server_dropped_is_replaced_within_the_same_check(
    production_probe_on_a_fake_clock: Probe,
) -> None:
    _postgres_or_skip()
    probe, client = production_probe_on_a_fake_clock, Client()
    before = backends_on_test_database()
    assert client.get("/readyz").status_code == 200
    (first,) = backends_on_test_database() - before

    _terminate(first)  # a database restart, an idle timeout, an operator's kill
    probe.clock.advance(1.5)
    reply = client.get("/readyz")

    assert reply.status_code == 200 and reply.json()["checks"] == {"database": "ok", "redis": "ok"}
    (second,) = backends_on_test_database() - before
    assert second != first and len(probe.connections.made) == 2


@pytest.mark.django_db
def test_the_connection_serves_checks_from_other_threads() -> None:
    """Under gevent each request is a greenlet with its own thread identity."""
    made = Connections()
    check = health.DatabaseCheck(made)
    try:
        results: list[bool] = []
        for _ in range(3):
            thread = threading.Thread(target=lambda: results.append(check()))
            thread.start()
            thread.join(timeout=30)
    finally:
        check.close()

    assert results == [True, True, True]
    assert len(made.made) == 1 and made.queries() == ["SELECT 1"] * 3


@pytest.mark.django_db
def test_an_unreachable_database_is_named_and_its_return_seen() -> None:
    _postgres_or_skip()
    unreachable = Connections({**connections.settings["default"], "HOST": "127.0.0.1", "PORT": "1"})
    check = health.DatabaseCheck(unreachable)
    clock = FakeClock()
    previous = _install(health.readiness_probe(database=check, redis_client=None, clock=clock))
    try:
        down = Client().get("/readyz")
        unreachable.settings_dict = None  # the database is back
        clock.advance(1.5)
        back = Client().get("/readyz")
    finally:
        health.install_readiness(previous)
        check.close()

    assert down.status_code == 503
    assert down.json() == {"status": "unavailable", "checks": {"database": "unreachable"}, "failing": ["database"]}
    assert back.status_code == 200 and back.json() == {"status": "ok", "checks": {"database": "ok"}}


@pytest.mark.django_db
def test_readyz_names_redis_when_its_ping_fails() -> None:
    class Down:
        def ping(self) -> bool:
            raise ConnectionError("redis is down")

    check = health.database_check()
    previous = _install(health.readiness_probe(database=check, redis_client=Down(), clock=FakeClock()))
    try:
        reply = Client().get("/readyz")
    finally:
        health.install_readiness(previous)
        check.close()

    assert reply.status_code == 503
    assert reply.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unreachable"},
        "failing": ["redis"],
    }
