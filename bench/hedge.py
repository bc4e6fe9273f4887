#!/usr/bin/env python
"""Hedged requests: latency percentiles without and with ``hedge`` when one of two replicas is slow.

    python bench/hedge.py                         # 300 requests per side, round-robin replicas
    python bench/hedge.py -n 500 --after-ms 20 --fast-ms 5 --slow-ms 200
    python bench/hedge.py --routing random        # a random balancer: the hedge meets the slow one half the time
    python bench/hedge.py --clients 4             # 4 clients per side at once

One service of two replicas behind one base URL (a loopback server that answers in
``--fast-ms`` or ``--slow-ms`` in turn, or at random with ``--routing random``), twice
in the gateway's configuration: ``plain`` (no hedge) and ``hedged``
(``hedge: {after_ms: N}``), each with a server of its own. The gateway runs the
production way (gunicorn, gateway_project/gunicorn.conf.py, two workers, a fresh SQLite
database, the configuration imported with ``manage.py gateway import``). Requests go to
both endpoints in turn (side by side: a drift of the shared machine's speed falls on
both); the report is p50 / p95 / p99 of each side, their ratio, and how many slow
answers each side's replicas sent and how many of their connections the gateway hung
up on (a hedge's cancelled loser).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import socket
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() and VENV_PYTHON.exists():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # gunicorn and the gateway live in the venv
sys.path.insert(0, str(BENCH))

import servers  # noqa: E402
import yaml  # noqa: E402
from run import clean_env  # noqa: E402


class Replicas:
    """Two replicas behind one address: ``round-robin`` (in turn) or ``random``."""

    def __init__(self, fast_s: float, slow_s: float, routing: str) -> None:
        self.fast_s, self.slow_s, self.routing = fast_s, slow_s, routing
        self.count = self.slow_answered = self.hung_up = 0
        self.lock = threading.Lock()
        self._random = random.Random(14)

    def slow_next(self) -> bool:
        with self.lock:
            self.count += 1
            return self._random.random() < 0.5 if self.routing == "random" else self.count % 2 == 1


def start_replicas(replicas: Replicas) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            slow = replicas.slow_next()
            time.sleep(replicas.slow_s if slow else replicas.fast_s)
            if slow:
                readable, _, _ = select.select([self.connection], [], [], 0)
                if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                    with replicas.lock:
                        replicas.hung_up += 1
                    self.close_connection = True
                    return  # the gateway hung up: nobody to answer
                with replicas.lock:
                    replicas.slow_answered += 1
            body = json.dumps({"replica": "slow" if slow else "fast"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return None

    server = ThreadingHTTPServer((servers.HOST, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{servers.HOST}:{server.server_address[1]}"


def config(urls: dict[str, str], after_ms: int) -> dict[str, object]:
    breaker = {"failure_threshold": 100000, "window_s": 60, "open_s": 30, "half_open_probes": 1}
    services: dict[str, dict[str, object]] = {
        name: {"base_url": url, "timeout_ms": 2000, "auth": {"type": "none"}, "breaker": breaker}
        for name, url in urls.items()
    }
    services["hedged"]["hedge"] = {"after_ms": after_ms}
    endpoints = [
        {
            "name": name,
            "method": "GET",
            "path": f"/{name}",
            "timeout_ms": 3000,
            "calls": [{"id": "it", "service": name, "stage": 1, "method": "GET", "path": "/it", "required": True}],
            "response": {"it": "{{ it }}"},
        }
        for name in urls
    ]
    layer = {"name": "Hedging bench", "base_path": "/v1", "auth": {"type": "none"}}
    return {"version": 1, "layer": layer, "services": services, "endpoints": endpoints}


def percentile(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * percent // 100) - 1)]  # nearest rank


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=300, help="requests per side")
    parser.add_argument("--clients", type=int, default=1, help="concurrent clients per side")
    parser.add_argument("--after-ms", type=int, default=20, help="hedge.after_ms of the hedged side")
    parser.add_argument("--fast-ms", type=float, default=5)
    parser.add_argument("--slow-ms", type=float, default=200)
    parser.add_argument("--routing", choices=("round-robin", "random"), default="round-robin")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    replicas = {name: Replicas(args.fast_ms / 1000, args.slow_ms / 1000, args.routing) for name in ("plain", "hedged")}
    started = {name: start_replicas(replica) for name, replica in replicas.items()}
    workdir = Path(tempfile.mkdtemp(prefix="gateway-hedge-"))
    env = clean_env() | {"DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}"}
    (workdir / "prom").mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "prom")
    config_path = workdir / "gateway.yaml"
    config_path.write_text(yaml.safe_dump(config({name: url for name, (_, url) in started.items()}, args.after_ms)))
    servers.prepare_gateway(workdir, config_path, env)
    gateway, base = servers.start_gateway(workdir, env=env, workers=args.workers, cpus=None)
    try:
        for name in replicas:  # warm: connections, plans
            for _ in range(4):
                servers.http("GET", f"{base}/v1/{name}")
        time.sleep(args.slow_ms / 1000 + 0.3)
        for replica in replicas.values():
            replica.count = replica.slow_answered = replica.hung_up = 0
        latencies: dict[str, list[float]] = {name: [] for name in replicas}
        failed: dict[str, int] = dict.fromkeys(replicas, 0)

        def one(name: str) -> None:
            began = time.perf_counter()
            status, _ = servers.http("GET", f"{base}/v1/{name}")
            latencies[name].append(time.perf_counter() - began)
            failed[name] += status != 200

        load = os.getloadavg()[0]
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            for _ in range(0, args.n, args.clients):  # side by side, in rounds of --clients requests each
                for name in ("plain", "hedged"):
                    list(pool.map(one, [name] * args.clients))
        time.sleep(args.slow_ms / 1000 + 0.3)  # the last losers look at their connections
        print(
            f"hedge bench: {args.routing} replicas answering in {args.fast_ms:g} / {args.slow_ms:g} ms, "
            f"hedge.after_ms {args.after_ms}, {len(latencies['plain'])} requests per side, {args.clients} client(s), "
            f"{args.workers} gunicorn workers; load average {load:.1f} -> {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs"
        )
        print("| side | p50 ms | p95 ms | p99 ms | failed | slow answers read | losers hung up on |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, values in latencies.items():
            p50, p95, p99 = (percentile(values, q) * 1000 for q in (50, 95, 99))
            replica = replicas[name]
            print(
                f"| {name} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {failed[name]} "
                f"| {replica.slow_answered} | {replica.hung_up} |"
            )
        ratios = [percentile(latencies["hedged"], q) / percentile(latencies["plain"], q) for q in (50, 95, 99)]
        print("hedged / plain: p50 {:.2f}, p95 {:.2f}, p99 {:.2f}".format(*ratios))
    finally:
        gateway.stop()
        for server, _ in started.values():
            server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
