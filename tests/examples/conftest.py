"""Fixtures for the examples: the demo simulator, loaded from its file.

``examples/`` is a folder of runnable files, not a package, so the simulator is
loaded by path (and registered in ``sys.modules``, which dataclasses need).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load_simulator() -> ModuleType:
    if "demo_simulator" in sys.modules:
        return sys.modules["demo_simulator"]
    spec = importlib.util.spec_from_file_location("demo_simulator", EXAMPLES / "simulator.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_simulator"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def simulator() -> ModuleType:
    """The ``examples/simulator.py`` module."""
    return _load_simulator()


@pytest.fixture(scope="session")
def sim(simulator: ModuleType) -> Iterator[object]:
    """Every service on a free port, answering at once (latency scale 0)."""
    handle = simulator.start_in_thread({name: 0 for name in simulator.SERVICE_NAMES}, latency_scale=0)
    yield handle
    handle.stop()
