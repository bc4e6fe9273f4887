#!/usr/bin/env python
"""gunicorn's own cost per request, stock against the gateway's serving setup, side by side.

    python bench/serving_ab.py                    # 10 clients, 8 rounds of 4 s per side
    python bench/serving_ab.py --rounds 12 --clients 50

Two gunicorns serve ``bench/floor_app.py`` (a WSGI app that does nothing, so what is
measured is the server's own work per request), both pinned to the server CPU with two
gevent workers each, wrk on the load CPU sending the checkout's request (POST, JSON body,
bearer token):

- A: gunicorn's stock gevent worker with its Python request parser and default proxy trust
  (what the gateway ran before round 10);
- B: the gateway's worker (``gateway_project.gunicorn_worker.GatewayWorker``) with the
  settings of ``gateway_project/gunicorn.conf.py`` that concern a request's cost: the C
  request parser (gunicorn-h1c), no forwarded-address parse, head and body in one send, the
  Date header formatted once a second.

The sides alternate (ABBA) so a drift in the shared machine's speed falls on both; the
report gives each side's median CPU per request and B/A per round pair.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])

import loadgen  # noqa: E402
import procstat  # noqa: E402
import servers  # noqa: E402

SIDES = {
    "A": ["--worker-class", "gevent", "--http-parser", "python"],
    "B": [
        "--worker-class",
        "gateway_project.gunicorn_worker.GatewayWorker",
        "--pythonpath",
        str(ROOT),
        "--forwarded-allow-ips",
        "*",
        "--forwarder-headers",
        "",
    ],
}
TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTEiLCJleHAiOjQxMDI0NDQ4MDB9." + "x" * 43


def start(side: str, workdir: Path, args: argparse.Namespace) -> tuple[servers.Managed, str]:
    port = servers.free_port()
    cmd = [
        str(servers.VENV_BIN / "gunicorn"),
        *SIDES[side],
        "--workers",
        str(args.workers),
        "--worker-connections",
        "1000",
        "--keep-alive",
        "5",
        "--control-socket",
        str(workdir / f"{side}.ctl"),
        "--chdir",
        str(BENCH),
        "--bind",
        f"{servers.HOST}:{port}",
        "floor_app:app",
    ]
    managed = servers._spawn(f"gunicorn {side}", loadgen.pinned(cmd, args.server_cpus), workdir / f"{side}.log")
    servers.wait_http(f"http://{servers.HOST}:{port}/", managed)
    return managed, f"http://{servers.HOST}:{port}/"


def cpu_ms_per_request(managed: servers.Managed, url: str, args: argparse.Namespace, duration_s: int) -> float:
    before = procstat.sample_tree(managed.pid)
    result = loadgen.run_wrk(url, clients=args.clients, duration_s=duration_s, token=TOKEN, cpus=args.load_cpus)
    after = procstat.sample_tree(managed.pid)
    if result.failed or not result.requests:
        raise RuntimeError(f"{url}: {result.failed} failed of {result.requests}")
    return procstat.ticks_to_ms(after.ticks - before.ticks) / result.requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--duration", type=int, default=4, help="seconds per side and round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-cpus", default="1")
    parser.add_argument("--load-cpus", default="0")
    args = parser.parse_args(argv)
    if shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        args.server_cpus = args.load_cpus = None
    if loadgen.wrk_path() is None:
        print("serving_ab: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="gateway-serving-ab-"))
    running: dict[str, tuple[servers.Managed, str]] = {}
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    try:
        for side in SIDES:
            running[side] = start(side, workdir, args)
            cpu_ms_per_request(*running[side], args, 1)  # warm-up
        for round_number in range(args.rounds):
            order = "AB" if round_number % 2 == 0 else "BA"
            for side in order:
                cpu[side].append(cpu_ms_per_request(*running[side], args, args.duration))
                time.sleep(0.3)
    finally:
        for managed, _ in running.values():
            managed.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    ratios = [b / a for a, b in zip(cpu["A"], cpu["B"], strict=True)]
    print(f"load average {procstat.loadavg()}; {args.clients} clients, {args.rounds} rounds of {args.duration} s")
    for side in SIDES:
        rounds = ", ".join(f"{value * 1000:.1f}" for value in cpu[side])
        print(f"{side}: median {statistics.median(cpu[side]) * 1000:.1f} µs/request ({rounds})")
    cheaper = sum(ratio < 1 for ratio in ratios)
    print(f"B/A: median {statistics.median(ratios):.3f}, B cheaper in {cheaper} of {len(ratios)} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
