#!/usr/bin/env python
"""The fake downstream services for the benchmark: examples/simulator.py on free ports.

    python bench/downstream.py --only cart,inventory,pricing,shipping,tax --latency-scale 1

Prints one JSON line, ``{"cart": 40123, ...}``, once every service listens, then
serves until SIGTERM/SIGINT. Free ports (not the simulator's fixed 9101...)
keep a benchmark from colliding with a demo someone else is running.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import signal
import sys
import threading
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
CHECKOUT_SERVICES = ("cart", "inventory", "pricing", "shipping", "tax")


def load_simulator() -> ModuleType:
    """examples/ is a folder of scripts, not a package: load the simulator by path."""
    if "demo_simulator" in sys.modules:
        return sys.modules["demo_simulator"]
    spec = importlib.util.spec_from_file_location("demo_simulator", ROOT / "examples" / "simulator.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_simulator"] = module
    spec.loader.exec_module(module)
    return module


def critical_path_ms(latency_scale: float) -> float:
    """The checkout's critical path: cart, then the slowest of stage 2, then tax (225 ms at scale 1)."""
    latency = {spec.name: spec.latency_ms for spec in load_simulator().SERVICES}
    stage2 = max(latency["inventory"], latency["pricing"], latency["shipping"])
    return (latency["cart"] + stage2 + latency["tax"]) * latency_scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(CHECKOUT_SERVICES))
    parser.add_argument("--latency-scale", type=float, default=1.0)
    parser.add_argument("--latency-jitter", type=float, default=0.0)
    args = parser.parse_args(argv)
    simulator = load_simulator()
    only = [name for name in args.only.split(",") if name]
    handle = simulator.start_in_thread(
        {name: 0 for name in only}, only=only, latency_scale=args.latency_scale, latency_jitter=args.latency_jitter
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(json.dumps(handle.ports), flush=True)
    try:
        while not stop.wait(3600):
            pass
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
