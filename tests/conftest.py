"""Shared test policy. Integration tests use the real PostgreSQL and Redis named by
DATABASE_URL and REDIS_URL (set by `make test` and .ci/run)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI a skip is a failure: a missing server or tool (Redis, Chromium, promtool,
    wrk) means CI did not set up what the suite needs, never that a check may pass unseen."""
    outcome: Any = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must provide what this test needs: {reason}"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker's in-process gateway on a Redis database of its own
    (pytest-django gives each its own PostgreSQL database likewise). Settings are read
    before conftest files are, so they are changed here, before anything has connected."""
    from django.conf import settings

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker or not settings.configured or not getattr(settings, "REDIS_URL", None):
        return
    from tests.support.redis import xdist_worker_redis_url

    url = xdist_worker_redis_url(settings.REDIS_URL, worker)
    settings.REDIS_URL = url
    cache = settings.CACHES.get("default", {})
    if cache.get("BACKEND") == "django_redis.cache.RedisCache":
        cache["LOCATION"] = url


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """pytest-django's, plus: /readyz keeps a database connection of its own
    (orchestration/web/health.py), which must be closed before the test database is dropped."""
    yield
    from orchestration.web import health

    health.readiness_close()


@pytest.fixture(scope="session", autouse=True)
def _stop_the_in_process_gateways_threads() -> Iterator[None]:
    """The first in-process request imports the URLconf, whose ``wiring.install()`` starts the
    adaptive admission limit's thread (a log line every 10 s), and telemetry starts the
    recent-stats flush: stopped at the end, before pytest closes the streams their log
    handler writes to (they logged "I/O operation on closed file" after the run)."""
    yield
    wiring = sys.modules.get("gateway_project.wiring")
    if wiring is not None:
        wiring.stop_background_threads()
