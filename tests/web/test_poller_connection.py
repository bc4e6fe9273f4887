"""The configuration poller keeps one database connection across polls (it opened and
closed one every second per worker) and replaces it when the server drops it, within
the same poll: the change committed meanwhile is still seen by that poll."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest
from django.db import connection

from gateway_project import wiring
from orchestration.web.kept_connection import KeptConnection
from orchestration.web.runtime import GatewayRuntime, LoadedConfig, RuntimeHolder, build_runtime_parts
from registry.services import config_version_bump
from tests.support.postgres import backends_on_test_database

pytestmark = pytest.mark.django_db(transaction=True)  # the poller's connection sees only committed rows

T = TypeVar("T")


def _build(config: LoadedConfig) -> GatewayRuntime:
    router, authenticator = build_runtime_parts(config)  # no downstream pool: only the version matters here
    return GatewayRuntime(plan=config.plan, router=router, authenticator=authenticator, executor=None, pool=None)


class Poller:
    """The production holder's loads and reads, polled from one thread of its own (as in a worker)."""

    def __init__(self) -> None:
        self.kept = KeptConnection()
        self.holder = RuntimeHolder(load=wiring._load_config, read_version=wiring._read_version, build=_build)
        self._thread = ThreadPoolExecutor(max_workers=1)

    def poll(self) -> None:
        self._in_thread(lambda: self.holder.poll(self.kept.run))

    def version(self) -> str:
        return self.holder.current().plan.version

    def close(self) -> None:
        self._in_thread(self.kept.close)
        self._thread.shutdown()

    def _in_thread(self, work: Callable[[], T]) -> T:
        return self._thread.submit(work).result(timeout=60)


@pytest.fixture
def poller() -> Iterator[Poller]:
    if connection.vendor != "postgresql":
        pytest.skip("counts PostgreSQL backends")
    config_version_bump(summary="a first version")
    made = Poller()
    made.holder.checks_on_request = False  # as once a poller runs: current() never reads the version
    yield made
    made.close()


def test_polls_keep_one_backend_and_see_each_change(poller: Poller) -> None:
    before = backends_on_test_database()  # the test's own connection, and whatever else is connected
    seen = []
    for _ in range(5):
        poller.poll()
        seen.append(backends_on_test_database() - before)
    (backend,) = seen[0]
    assert seen == [{backend}] * 5  # the same one all along, open between polls

    version = config_version_bump(summary="a change")
    poller.poll()
    assert poller.version() == version
    assert backends_on_test_database() - before == {backend}


def test_a_killed_backend_is_replaced_within_the_poll_that_finds_it(
    poller: Poller, caplog: pytest.LogCaptureFixture
) -> None:
    before = backends_on_test_database()
    poller.poll()
    (first,) = backends_on_test_database() - before
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])  # a restart, an idle timeout, an operator

    version = config_version_bump(summary="committed while the poller's backend was gone")
    with caplog.at_level(logging.INFO):
        poller.poll()

    assert poller.version() == version
    (second,) = backends_on_test_database() - before
    assert second != first
    assert "configuration poll failed" not in caplog.text
    assert "the kept database connection failed; once more on a new one" in caplog.text
