#!/usr/bin/env python
"""Where the gateway's CPU per request goes, layer by layer, against the reference's.

    python bench/floor.py                      # 10 clients, 3 rounds of 5 s per point
    python bench/floor.py --rounds 5 --duration 4 --clients 1

Three servers run at once, pinned to the server CPU (wrk and the zero-latency
simulator on the load CPU), each with two workers:

- gunicorn with its gevent worker serving ``bench/floor_app.py``, a WSGI app that
  does nothing: what the server the product card fixes costs by itself;
- the gateway, started as ``bench/run.py`` starts it: ``GET /healthz`` (gunicorn +
  Django + the gateway's middleware + a small JSON view, access line included),
  then the checkout summary (JWT, five downstream calls, assembly);
- the reference aggregator (aiohttp): its ``GET /healthz``, then the checkout.

Points are measured in rounds (every point once per round, in the same order),
so a drift in the shared machine's speed falls on all of them; the table gives
each point's median CPU ms per request and what each layer adds to the one
before it. The report goes to stdout and ``bench/results/floor-<date>-<time>.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # `python bench/floor.py` from any interpreter

import loadgen  # noqa: E402
import procstat  # noqa: E402
import run  # noqa: E402
import servers  # noqa: E402
import variants  # noqa: E402


@dataclass
class FloorPoint:
    label: str
    server: str
    family: str  # the stack a point builds on: "adds" is measured against the family's previous point
    path: str
    method: str
    cpu_ms: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    failed: int = 0

    @property
    def median_cpu_ms(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else 0.0


def start_empty_gunicorn(workdir: Path, *, workers: int, cpus: str | None) -> tuple[servers.Managed, str]:
    """gunicorn's gevent worker as gateway_project/gunicorn.conf.py sets it up, serving nothing."""
    port = servers.free_port()
    cmd = [
        str(servers.VENV_BIN / "gunicorn"),
        "--worker-class",
        "gevent",
        "--workers",
        str(workers),
        "--worker-connections",
        "1000",
        "--keep-alive",
        "5",
        "--control-socket",
        str(workdir / "empty-gunicorn.ctl"),
        "--chdir",
        str(BENCH),
        "--bind",
        f"{servers.HOST}:{port}",
        "floor_app:app",
    ]
    managed = servers._spawn("empty gunicorn", loadgen.pinned(cmd, cpus), workdir / "empty-gunicorn.log")
    servers.wait_http(f"http://{servers.HOST}:{port}/", managed)
    return managed, f"http://{servers.HOST}:{port}"


def measure_point(point: FloorPoint, server: servers.Managed, url: str, args: argparse.Namespace, token: str) -> None:
    before = procstat.sample_tree(server.pid)
    result = loadgen.run_wrk(
        url + point.path,
        clients=args.clients,
        duration_s=args.duration,
        method=point.method,
        body='{"cartId":"c-1001"}' if point.method == "POST" else "",
        token=token if point.method == "POST" else "",
        cpus=args.load_cpus,
    )
    after = procstat.sample_tree(server.pid)
    if result.requests:
        point.cpu_ms.append(procstat.ticks_to_ms(after.ticks - before.ticks) / result.requests)
        point.rps.append(result.rps)
    point.failed += result.failed


def report(points: list[FloorPoint], args: argparse.Namespace, started: dt.datetime, load: str) -> str:
    lines = [
        f"# Floor benchmark, {started:%Y-%m-%d %H:%M} (local time)",
        "",
        f"- Commit: {run.git_commit()}",
        f"- Machine: {os.cpu_count()} CPUs ({procstat.cpu_model()}), Python {sys.version.split()[0]}, "
        f"load average at start {load}",
        f"- Pinning: servers on CPU {args.server_cpus}, wrk and the simulator on CPU {args.load_cpus}"
        if args.server_cpus
        else "- Pinning: none",
        f"- {args.clients} clients, {args.rounds} rounds of {args.duration} s per point, points interleaved; "
        "downstreams at zero latency; two workers per server",
        "",
        "| stack | request | req/s (median) | CPU ms/req (median) | rounds | adds | failed |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    previous: dict[str, float] = {}
    for point in points:
        base = previous.get(point.family)
        adds = f"+{point.median_cpu_ms - base:.3f}" if base is not None else ""
        rounds = " / ".join(f"{value:.3f}" for value in point.cpu_ms)
        rps = statistics.median(point.rps) if point.rps else 0.0
        lines.append(
            f"| {point.label} | {point.method} {point.path} | {rps:.1f} | **{point.median_cpu_ms:.3f}** | "
            f"{rounds} | {adds} | {point.failed} |"
        )
        previous[point.family] = point.median_cpu_ms
    gateway, reference = points[2].median_cpu_ms, points[4].median_cpu_ms
    if reference:
        lines += ["", f"Gateway checkout / reference checkout: **{gateway / reference:.2f} times**."]
    lines += [
        "",
        "\"adds\": the point's median minus the previous point's of the same server family "
        "(gunicorn → Django → the gateway's checkout; aiohttp → the reference's checkout).",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--duration", type=int, default=5, help="seconds per point and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server-cpus", default="1")
    parser.add_argument("--load-cpus", default="0")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args(argv)
    if args.no_pin or shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2:
        args.server_cpus = args.load_cpus = None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if loadgen.wrk_path() is None:
        print("floor: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    started, load = dt.datetime.now(), procstat.loadavg()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-floor-"))
    env = run.clean_env()
    simulator, ports = servers.start_simulator(workdir, latency_scale=0.0, cpus=args.load_cpus)
    running: list[servers.Managed] = [simulator]
    try:
        config = variants.base_config(ports)
        token = run.mint_token(config)
        gateway_env = {
            **env,
            "DATABASE_URL": f"sqlite:///{workdir / 'gateway.sqlite3'}",
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
        }
        (workdir / "prometheus").mkdir()
        servers.prepare_gateway(workdir, variants.write_config(config, workdir / "gateway.yaml"), gateway_env)
        starters: dict[str, Callable[[], tuple[servers.Managed, str]]] = {
            "gunicorn": lambda: start_empty_gunicorn(workdir, workers=args.workers, cpus=args.server_cpus),
            "gateway": lambda: servers.start_gateway(
                workdir, env=gateway_env, workers=args.workers, cpus=args.server_cpus
            ),
            "aiohttp": lambda: servers.start_reference(
                workdir,
                ports=ports,
                workers=args.workers,
                cpus=args.server_cpus,
                jwt_env=run.JWT_SECRET_ENV,
                env=env,
            ),
        }
        started_servers: dict[str, tuple[servers.Managed, str]] = {}
        for name, start in starters.items():
            started_servers[name] = start()
            running.append(started_servers[name][0])
        for name in ("gateway", "aiohttp"):
            ok, detail = servers.check_checkout(started_servers[name][1] + run.CHECKOUT_PATH, token)
            if not ok:
                raise RuntimeError(f"{name} does not serve the checkout: {detail}")
        points = [
            FloorPoint("gunicorn + gevent worker, empty WSGI app", "gunicorn", "gateway", "/", "GET"),
            FloorPoint("+ Django, the gateway's middleware, a JSON view", "gateway", "gateway", "/healthz", "GET"),
            FloorPoint("+ the checkout (JWT, 5 calls, assembly)", "gateway", "gateway", run.CHECKOUT_PATH, "POST"),
            FloorPoint("aiohttp, a JSON handler (the reference's)", "aiohttp", "aiohttp", "/healthz", "GET"),
            FloorPoint("+ the checkout (JWT, 5 calls, assembly)", "aiohttp", "aiohttp", run.CHECKOUT_PATH, "POST"),
        ]
        for point in points:  # warm-up: every worker reaches steady state
            server, url = started_servers[point.server]
            warm = {"clients": args.clients, "method": point.method, "token": token, "cpus": args.load_cpus}
            loadgen.run_wrk(url + point.path, duration_s=1, **warm)  # type: ignore[arg-type]
        for round_number in range(args.rounds):
            for point in points:
                server, url = started_servers[point.server]
                measure_point(point, server, url, args, token)
                time.sleep(0.5)
            print(f"floor: round {round_number + 1} of {args.rounds} done", file=sys.stderr)
    finally:
        for managed in reversed(running):
            managed.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    run.publish(report(points, args, started, load), args.out / f"floor-{started:%Y-%m-%d-%H%M%S}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
