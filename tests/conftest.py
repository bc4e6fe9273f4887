"""Shared test policy. Integration tests use the real PostgreSQL and Redis named by
DATABASE_URL and REDIS_URL (set by `make test` and .ci/run)."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None) -> Iterator[None]:
    """pytest-django's, plus: /readyz keeps a database connection of its own
    (orchestration/web/health.py), which must be closed before the test database is dropped."""
    yield
    from orchestration.web import health

    health.readiness_close()
