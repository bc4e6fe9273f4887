"""Fixtures for the engine tests: a fake clock and fake downstream services."""

from __future__ import annotations

import pytest

from orchestration.clock import FakeClock
from orchestration.context import RequestContext
from tests.orchestration.engine_kit import FakeDownstream


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def downstream() -> FakeDownstream:
    return FakeDownstream()


@pytest.fixture
def request_context() -> RequestContext:
    return RequestContext(
        method="GET",
        path_params={"user_id": "42"},
        query={"include": "items"},
        headers={"x-channel": "mobile", "host": "gateway.example", "authorization": "Bearer client-token"},
        body={"cartId": "c-1"},
        user={"sub": "u-7"},
        request_id="req-123",
        authorization="Bearer client-token",
    )
