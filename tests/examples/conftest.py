"""Fixtures for the examples: the demo simulator, loaded from its file (tests/support/simulator.py)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from tests.support.simulator import load_simulator


@pytest.fixture(scope="session")
def simulator() -> ModuleType:
    """The ``examples/simulator.py`` module."""
    return load_simulator()


@pytest.fixture(scope="session")
def sim(simulator: ModuleType) -> Iterator[object]:
    """Every service on a free port, answering at once (latency scale 0)."""
    handle = simulator.start_in_thread({name: 0 for name in simulator.SERVICE_NAMES}, latency_scale=0)
    yield handle
    handle.stop()
