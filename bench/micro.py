#!/usr/bin/env python
"""In-process microbenchmark: CPU per checkout request through the WSGI app.

    python bench/micro.py                       # 400 requests, 1 client, all features on
    python bench/micro.py -n 1000 -c 4          # 4 concurrent greenlets
    python bench/micro.py -n 8000 -c 100 --latency-scale 1   # the demo latencies (critical path 225 ms)
    python bench/micro.py --redis redis://127.0.0.1:6379/9   # rate limits + breakers in Redis
    python bench/micro.py --env OTEL_SDK_DISABLED=true       # a feature off
    python bench/micro.py --profile             # cProfile of the measured requests (top 40 by tottime)
    python bench/micro.py --ab variant.py -n 4000   # A/B in one process, blocks interleaved (see --ab)
    python bench/micro.py --redis URL --count-redis --pace-ms 45   # Redis round trips per request, by caller

What it does: the simulated downstreams (bench/downstream.py) at zero latency in
a separate process, a fresh SQLite database with the benchmark's checkout
configuration imported the product's way (``manage.py gateway import``), then a
child process that patches gevent first (as gunicorn.conf.py does), imports
``gateway_project.wsgi.application`` and serves N ``POST /v1/checkout/summary``
requests (JWT, JSON body) straight through the WSGI callable, C at a time in
greenlets. It reports ``time.process_time()`` per request — the gateway's own
CPU, without gunicorn's HTTP parsing or wrk — which is repeatable enough to
compare a change before and after within a few percent (run it 2-3 times).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
JWT_SECRET = "bench-jwt-secret-not-a-real-one-0123456789"
PATH = "/v1/checkout/summary"


def parent(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(BENCH))
    import jwt
    import servers
    import variants

    workdir = Path(tempfile.mkdtemp(prefix="gateway-micro-"))
    # With two CPUs or more the simulator and the measured child each get their own,
    # as in run.py: they would otherwise take turns on one, and blur A/B comparisons.
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2
    simulator, ports = servers.start_simulator(workdir, latency_scale=args.latency_scale, cpus="0" if pin else None)
    try:
        config = variants.base_config(ports)
        config_path = variants.write_config(config, workdir / "gateway.yaml")
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("GATEWAY_", "OTEL_", "DJANGO_", "PROMETHEUS_"))
            and key not in {"DATABASE_URL", "REDIS_URL"}
        }
        env.update(
            DJANGO_SECRET_KEY="bench-django-secret-key-not-a-real-one",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            GATEWAY_JWT_SECRET=JWT_SECRET,
            DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        )
        if args.redis:
            env["REDIS_URL"] = args.redis
        if not args.no_multiproc:
            (workdir / "prom").mkdir()
            env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "prom")
        for pair in args.env:
            key, _, value = pair.partition("=")
            env[key] = value
        servers.prepare_gateway(workdir, config_path, env)
        now = int(time.time())
        jwt_cfg = config["layer"]["auth"].get("jwt") or {}
        claims: dict[str, object] = {jwt_cfg.get("user_claim", "sub"): "42", "iat": now, "exp": now + 86400}
        if jwt_cfg.get("issuer"):
            claims["iss"] = jwt_cfg["issuer"]
        if jwt_cfg.get("audience"):
            claims["aud"] = jwt_cfg["audience"]
        token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
        child_args = {
            "n": args.n,
            "c": args.c,
            "warmup": args.warmup,
            "token": token,
            "profile": args.profile,
            "rounds": args.rounds,
            "pyspy": str(Path(args.pyspy).resolve()) if args.pyspy else "",
            "transport": args.transport,
            "ab": str(Path(args.ab).resolve()) if args.ab else "",
            "on": str(Path(args.on).resolve()) if args.on else "",
            "blocks": args.blocks,
            "count_redis": args.count_redis,
            "pace_ms": args.pace_ms,
        }
        command = [str(VENV_PYTHON), str(Path(__file__)), "--child", json.dumps(child_args)]
        done = subprocess.run(servers.pinned(command, "1" if pin else None), cwd=ROOT, env=env, check=False)
        return done.returncode
    finally:
        simulator.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


def use_httpcore_transport() -> None:
    """For the transport comparison only: httpx's default transport (httpcore's
    pool) under every service, sized like ours, instead of the gateway's own."""
    import httpx

    from orchestration.downstream import auth

    def httpcore_transport(service: Any) -> httpx.BaseTransport:
        size = service.bulkhead.max_concurrent
        return httpx.HTTPTransport(limits=httpx.Limits(max_connections=size, max_keepalive_connections=size))

    auth.transport_for = httpcore_transport


def child(spec: dict[str, object]) -> int:
    from gevent import monkey

    monkey.patch_all()
    import io
    import logging

    import gevent
    import gevent.pool

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
    import gateway_project.wsgi as wsgi  # the app read per request: an --ab variant may swap it

    if spec.get("transport") == "httpcore":
        use_httpcore_transport()
    trips = count_redis_round_trips() if spec.get("count_redis") else None

    body = b'{"cartId":"c-1001"}'
    token = str(spec["token"])
    statuses: dict[str, int] = {}
    first_body: list[bytes] = []

    # The access line goes to stderr as in production; send it to /dev/null here so
    # the terminal is not the bottleneck, but keep the handler doing its work.
    devnull = open(os.devnull, "w")  # noqa: SIM115
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)

    def one() -> None:
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": PATH,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {token}",
            "HTTP_USER_AGENT": "wrk",
            "HTTP_ACCEPT": "*/*",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        status_holder: list[str] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: object = None) -> None:
            status_holder.append(status)

        result = wsgi.application(environ, start_response)
        chunks = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        code = status_holder[0].split()[0]
        statuses[code] = statuses.get(code, 0) + 1
        if not first_body:
            first_body.append(chunks)

    def run(total: int, clients: int) -> None:
        remaining = [total]

        pace_s = float(spec.get("pace_ms") or 0) / 1000  # type: ignore[arg-type]

        def worker() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                one()
                if pace_s:
                    gevent.sleep(pace_s)  # a client's think time: time-based refreshes show per request

        pool = gevent.pool.Pool(clients)
        for _ in range(clients):
            pool.spawn(worker)
        pool.join(raise_error=True)

    toggle = _load_toggle(str(spec["ab"])) if spec.get("ab") else None
    run(int(spec["warmup"]), int(spec["c"]))  # type: ignore[call-overload]
    if toggle is not None:
        toggle(True)
        run(int(spec["warmup"]), int(spec["c"]))  # type: ignore[call-overload]
        toggle(False)
    if spec.get("on"):  # variant B throughout: its profile, its rounds
        _load_toggle(str(spec["on"]))(True)
        run(int(spec["warmup"]), int(spec["c"]))  # type: ignore[call-overload]
    answer = json.loads(first_body[0])
    if answer.get("total") != 16234:
        print(f"micro: unexpected answer {first_body[0][:300]!r}", file=sys.stderr)
        return 1
    statuses.clear()
    n = int(spec["n"])  # type: ignore[call-overload]
    profiler = spy = None
    if spec.get("pyspy"):
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "-r",
                "250",
                "-f",
                "raw",
                "-o",
                str(spec["pyspy"]),
                "-p",
                str(os.getpid()),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        gevent.sleep(1.0)  # let it attach
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile(time.process_time)  # CPU time: waits on the network do not count
        profiler.enable()
    if toggle is not None:
        return _interleaved(toggle, lambda count: run(count, int(spec["c"])), n, int(spec["blocks"]), statuses)  # type: ignore[call-overload]
    rounds = []
    for _ in range(int(spec.get("rounds") or 1)):  # type: ignore[call-overload]
        statuses.clear()
        if trips is not None:
            trips.clear()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        run(n, int(spec["c"]))  # type: ignore[call-overload]
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if trips is not None:
            total = sum(trips.values())
            print(f"micro: Redis round trips {total / n:.3f} per request ({total} for {n} requests), by caller:")
            for caller, count in sorted(trips.items(), key=lambda item: -item[1]):
                print(f"    {count / n:8.3f}  {caller}")
        rounds.append(cpu / n * 1000)
        print(
            f"micro: {n} requests, {spec['c']} clients: {cpu / n * 1000:.2f} CPU ms/req, "
            f"{wall / n * 1000:.2f} wall ms/req, {n / wall:.0f} req/s, statuses {statuses}",
            flush=True,
        )
    if spy is not None:
        import signal

        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=30)
        sys.path.insert(0, str(BENCH))
        import profiling

        print(profiling.layers_markdown(profiling.layers(Path(str(spec["pyspy"])))))
    if profiler is not None:
        import pstats

        profiler.disable()
        if os.environ.get("MICRO_PROFILE_OUT"):
            profiler.dump_stats(os.environ["MICRO_PROFILE_OUT"])
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(40)
    if len(rounds) > 1:
        print(
            f"micro: best of {len(rounds)} rounds: {min(rounds):.2f} CPU ms/req, "
            f"median {sorted(rounds)[len(rounds) // 2]:.2f}"
        )
    return 0


def count_redis_round_trips() -> dict[str, int]:
    """Counts every write to a Redis socket (one per round trip: a pipeline or a
    script is one write and waits for its replies), redis-py's and the hot path's
    lane's (``orchestration.redis_lane``, marked "(lane)"), keyed by the gateway
    function that made it. Patched before the gateway is imported."""
    import redis.connection

    counts: dict[str, int] = {}
    original = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        frame = sys._getframe(1)
        caller = "?"
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith(("orchestration.", "gateway_project.", "registry.")):
                caller = f"{module}.{frame.f_code.co_name}"
                break
            frame = frame.f_back  # type: ignore[assignment]
        counts[caller] = counts.get(caller, 0) + 1
        original(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]

    from orchestration import redis_lane

    lane_once = redis_lane.Lane._once

    def counting_lane(self: Any, packed: bytes, replies: int) -> list[Any]:
        caller = "?"
        frame = sys._getframe(1)
        while frame is not None:
            module = frame.f_globals.get("__name__", "")
            if module.startswith(("orchestration.", "gateway_project.", "registry.")) and module != redis_lane.__name__:
                caller = f"{module}.{frame.f_code.co_name} (lane)"
                break
            frame = frame.f_back  # type: ignore[assignment]
        counts[caller] = counts.get(caller, 0) + 1
        return lane_once(self, packed, replies)

    redis_lane.Lane._once = counting_lane  # type: ignore[method-assign]
    return counts


def _load_toggle(path: str) -> Any:
    """``toggle(on: bool)`` from a Python file: switches variant B on (True) or back to A."""
    import importlib.util

    module_spec = importlib.util.spec_from_file_location("micro_variant", path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.toggle


def _interleaved(toggle: Any, run: Any, n: int, blocks: int, statuses: dict[str, int]) -> int:
    """A and B in alternating blocks (ABBA order, so a drift in machine speed
    during the run falls on both): CPU per request of each block, then the
    median per variant and B's median over A's."""
    per_block = max(1, n // blocks)
    cpu: dict[bool, list[float]] = {False: [], True: []}
    for index in range(blocks):
        for variant in (False, True) if index % 2 == 0 else (True, False):
            toggle(variant)
            statuses.clear()
            cpu0 = time.process_time()
            run(per_block)
            cpu[variant].append((time.process_time() - cpu0) / per_block * 1000)
            if set(statuses) != {"200"}:
                print(f"micro: variant {'B' if variant else 'A'} answered {statuses}", file=sys.stderr)
                return 1
    toggle(False)
    a, b = (sorted(cpu[v])[len(cpu[v]) // 2] for v in (False, True))
    wins = sum(1 for x, y in zip(cpu[False], cpu[True], strict=True) if y < x)
    print(
        f"micro A/B: {blocks} block pairs of {per_block} requests: A median {a:.3f}, B median {b:.3f} "
        f"CPU ms/req, B/A {b / a:.3f}, B cheaper in {wins} of {blocks} pairs"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=400, help="measured requests")
    parser.add_argument("-c", type=int, default=1, help="concurrent clients (greenlets)")
    parser.add_argument(
        "--latency-scale",
        type=float,
        default=0.0,
        help="the simulated downstreams' latencies times this (default 0: no waiting; 1: the demo's, "
        "critical path 225 ms — then use many clients, e.g. -c 100)",
    )
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1, help="measure N times in one process; reports best and median")
    parser.add_argument("--redis", default="", help="REDIS_URL for the gateway (default: none, in-process state)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the gateway (repeatable)")
    parser.add_argument("--no-multiproc", action="store_true", help="no PROMETHEUS_MULTIPROC_DIR")
    parser.add_argument("--profile", action="store_true", help="cProfile (greenlet switches blur it)")
    parser.add_argument("--pyspy", default="", help="write py-spy raw samples of the measured requests to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the simulator (CPU 0) and the child (CPU 1)")
    parser.add_argument(
        "--transport",
        choices=["ours", "httpcore"],
        default="ours",
        help="downstream transport: the gateway's own (default) or httpx's default httpcore pool, for comparison",
    )
    parser.add_argument(
        "--ab",
        default="",
        help="a Python file defining toggle(on: bool) that switches variant B on and off: "
        "A and B measured in interleaved blocks of one process (beats a machine whose speed drifts)",
    )
    parser.add_argument(
        "--on", default="", help="a --ab variant file switched on for the whole run (B's own rounds or profile)"
    )
    parser.add_argument("--count-redis", action="store_true", help="count Redis round trips per request, by caller")
    parser.add_argument("--pace-ms", type=float, default=0.0, help="each client waits this long between requests")
    parser.add_argument("--blocks", type=int, default=20, help="with --ab: block pairs (n is split among them)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    for option, variant in (("--ab", args.ab), ("--on", args.on)):
        if variant and not Path(variant).is_file():
            parser.error(f"{option}: no variant file at {variant}")
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())
