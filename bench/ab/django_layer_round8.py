"""A/B for bench/micro.py --ab: B = every change of round 8 to the Django layer together
(URL match remembered per path, the lean django-prometheus middlewares, the request's
headers read from META), A = all three as before (main at ec0bd05)."""

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(f"round8_{name}", Path(__file__).resolve().parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_VARIANTS = ("resolver_cache", "prometheus_lean", "lower_headers_meta")
_toggles = [_load(name).toggle for name in _VARIANTS]


def toggle(on: bool) -> None:
    for one in _toggles:
        one(on)
