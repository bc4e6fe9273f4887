"""CPU an idle gateway worker burns: its config poller, admission's sampler, timers.

Starts gunicorn (the production config, one gevent worker, no traffic) from each code
root given, lets it settle, then reads the worker's utime+stime and its threads'
schedstat run time over ``--idle-s`` seconds. Roots are measured in ABBA order,
``--rounds`` times, so drift on a shared machine hits both alike; prints each
root's median ms of CPU per second idle. Needs DATABASE_URL (migrated) and
optionally REDIS_URL in the environment.

    bench/idle_cpu.py --root A=/tmp/base --root B=. --idle-s 20 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path

from procstat import TICKS_PER_S, children, cpu_ticks, schedstat_sum
from servers import VENV_BIN, Managed, free_port


def measure(root: Path, idle_s: float, settle_s: float, log: Path) -> tuple[float, float]:
    """(ms CPU/s by utime+stime, ms CPU/s by schedstat) of one idle worker started from ``root``."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "WEB_CONCURRENCY": "1", "GATEWAY_DRAIN_ACCEPT_S": "0"}
    command = [str(VENV_BIN / "gunicorn"), "-c", "gateway_project/gunicorn.conf.py", "gateway_project.wsgi"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=out, start_new_session=True)
    server = Managed("gateway", proc, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or not server.alive():
                raise RuntimeError(f"gateway did not start: {log}")
            time.sleep(0.2)
        time.sleep(settle_s)
        (worker,) = children(proc.pid)
        ticks, ns, start = cpu_ticks(worker), schedstat_sum(worker, 0), time.monotonic()
        time.sleep(idle_s)
        ticks, ns, elapsed = cpu_ticks(worker) - ticks, schedstat_sum(worker, 0) - ns, time.monotonic() - start
        return ticks / TICKS_PER_S * 1000 / elapsed, ns / 1e6 / elapsed
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", action="append", required=True, help="NAME=code root (repeat: A/B)")
    parser.add_argument("--idle-s", type=float, default=20.0)
    parser.add_argument("--settle-s", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="ABBA blocks")
    args = parser.parse_args()
    roots = [(name, Path(path).resolve()) for name, path in (item.split("=", 1) for item in args.root)]
    results: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in roots}
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    for _ in range(args.rounds):
        for name, root in [*roots, *reversed(roots)]:
            stat, sched = measure(root, args.idle_s, args.settle_s, logs / f"idle_cpu_{name}.log")
            results[name].append((stat, sched))
            print(f"{name}: {stat:.2f} ms/s (utime+stime), {sched:.2f} ms/s (schedstat)", flush=True)
    for name, values in results.items():
        stat = statistics.median(v[0] for v in values)
        sched = statistics.median(v[1] for v in values)
        print(f"median {name}: {stat:.2f} ms CPU/s (utime+stime), {sched:.2f} ms CPU/s (schedstat), n={len(values)}")


if __name__ == "__main__":
    main()
