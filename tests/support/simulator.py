"""The demo simulator (``examples/simulator.py``), loaded from its file.

``examples/`` is a folder of runnable files, not a package, so the simulator is
loaded by path and registered in ``sys.modules`` as ``demo_simulator`` (which
dataclasses need); every test folder gets the same module object.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_simulator() -> ModuleType:
    if "demo_simulator" in sys.modules:
        return sys.modules["demo_simulator"]
    spec = importlib.util.spec_from_file_location("demo_simulator", EXAMPLES / "simulator.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_simulator"] = module
    spec.loader.exec_module(module)
    return module
