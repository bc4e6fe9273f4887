"""CPU of one configuration poll, in process: a new database connection per poll (closed
after it, as before the poller kept one) against the poller's kept connection
(orchestration/web/kept_connection.py), in alternating blocks (ABBA). Needs a migrated
DATABASE_URL with a configuration imported.

    DATABASE_URL=postgres://... python bench/poll_cost.py --polls 200 --blocks 8
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--polls", type=int, default=200, help="polls per block")
    parser.add_argument("--blocks", type=int, default=8, help="blocks per variant, ABBA order")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connections

    from gateway_project import wiring
    from orchestration.web.kept_connection import KeptConnection
    from orchestration.web.runtime import GatewayRuntime, LoadedConfig, RuntimeHolder, build_runtime_parts

    def build(config: LoadedConfig) -> GatewayRuntime:
        router, authenticator = build_runtime_parts(config)  # no downstream pool: a poll that finds no change
        return GatewayRuntime(plan=config.plan, router=router, authenticator=authenticator, executor=None, pool=None)

    def closing(work: Callable[[], bool]) -> bool:
        try:
            return work()
        finally:
            connections.close_all()

    holder = RuntimeHolder(load=wiring._load_config, read_version=wiring._read_version, build=build)
    holder.refresh()
    connections.close_all()
    kept = KeptConnection()
    runners = [("new connection per poll", closing), ("kept connection", kept.run)]
    results: dict[str, list[float]] = {name: [] for name, _ in runners}
    for block in range(args.blocks):
        for name, run in runners if block % 2 == 0 else runners[::-1]:
            started = _cpu_s()
            for _ in range(args.polls):
                holder.poll(run)
            results[name].append((_cpu_s() - started) / args.polls * 1e6)
    kept.close()
    for name, values in results.items():
        blocks = ", ".join(f"{value:.0f}" for value in values)
        print(f"{name}: median {statistics.median(values):.0f} µs CPU per poll (blocks: {blocks})")


if __name__ == "__main__":
    main()
