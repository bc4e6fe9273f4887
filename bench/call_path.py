#!/usr/bin/env python
"""CPU per downstream call, the call path alone: ``DownstreamClient.attempt`` through the
real transport (trace propagation included) against the simulator at zero latency.

    python bench/call_path.py -n 4000 -c 4                 # µs of CPU per call
    python bench/call_path.py --ab bench/ab/aa.py --blocks 16   # ABBA blocks, as micro.py --ab
    python bench/call_path.py --profile                    # cProfile, top 35 by tottime

Half the calls are ``GET /carts/42``, half ``POST /calculate`` with a JSON body, as
the checkout's: what ``micro.py`` measures of the downstream path without the rest of
the request around it (a finer instrument for changes to the call path only).
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent.pool  # noqa: E402

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=4000)
    parser.add_argument("-c", type=int, default=4)
    parser.add_argument("--ab", default="")
    parser.add_argument("--blocks", type=int, default=16)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    from orchestration.clock import SystemClock
    from orchestration.downstream import DownstreamPool, RequestSpec
    from orchestration.downstream.auth import transport_for
    from orchestration.observability import tracing
    from orchestration.outcome import OutcomeKind
    from orchestration.plan import Service

    simulator = subprocess.Popen(
        [sys.executable, str(BENCH / "downstream.py"), "--only", "cart,pricing", "--latency-scale", "0"],
        stdout=subprocess.PIPE,
        preexec_fn=lambda: os.sched_setaffinity(0, {0}) if (os.cpu_count() or 1) >= 2 else None,
    )
    try:
        assert simulator.stdout is not None
        ports = json.loads(simulator.stdout.readline())
        if (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {1})
        services = {name: Service(name, f"http://127.0.0.1:{port}") for name, port in ports.items()}
        pool = DownstreamPool(
            services,
            lambda svc: tracing.PropagatingTransport(transport_for(svc)),
            clock=SystemClock(),
            environ={},
        )
        specs = [
            ("cart", RequestSpec(method="GET", path="/carts/c-1001", request_id="r-1", client_authorization="B t")),
            (
                "pricing",
                RequestSpec(
                    method="POST",
                    path="/calculate",
                    json_body={"items": [{"sku": "SKU-CHARGER", "quantity": 2}], "currency": "EUR"},
                    has_body=True,
                    request_id="req-1",
                ),
            ),
        ]

        def one(index: int) -> None:
            name, spec = specs[index % 2]
            outcome = pool.client(name).attempt(spec, 2.0)
            if outcome.kind is not OutcomeKind.OK:
                raise SystemExit(f"call failed: {outcome}")

        def block(count: int) -> float:
            group = gevent.pool.Pool(args.c)
            cpu0 = time.process_time()
            group.map(one, range(count))
            return (time.process_time() - cpu0) / count * 1e6

        block(200)  # warm: connections, caches
        if args.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
            block(args.n)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
            return 0
        if not args.ab:
            print(f"call_path: {block(args.n):.1f} µs CPU per call ({args.n} calls, {args.c} greenlets)")
            return 0
        spec_ = importlib.util.spec_from_file_location("call_path_variant", args.ab)
        assert spec_ and spec_.loader
        variant = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(variant)
        per_block = max(1, args.n // args.blocks)
        cpu: dict[bool, list[float]] = {False: [], True: []}
        wins = 0
        for index in range(args.blocks):
            pair = {}
            for on in (False, True) if index % 2 == 0 else (True, False):
                variant.toggle(on)
                pair[on] = block(per_block)
                cpu[on].append(pair[on])
            wins += pair[True] < pair[False]
        variant.toggle(False)
        a, b = statistics.median(cpu[False]), statistics.median(cpu[True])
        print(
            f"call_path --ab {Path(args.ab).name}: A {a:.1f} µs, B {b:.1f} µs per call, B/A {b / a:.3f}, "
            f"B cheaper in {wins} of {args.blocks} ({per_block} calls per block, {args.c} greenlets)"
        )
        return 0
    finally:
        simulator.terminate()
        simulator.wait()


if __name__ == "__main__":
    raise SystemExit(main())
