#!/usr/bin/env python
"""The gateway benchmark: the checkout summary through the gateway and through a hand-written reference.

    python bench/run.py                        # 10, 50, 200 clients, 10 s per point (make bench)
    python bench/run.py --quick                # a 2 s smoke of the same thing
    python bench/run.py --latency-scale 0      # zero-latency downstreams: pure gateway overhead
    python bench/run.py --features             # every feature on, then each turned off in turn
    python bench/run.py --profile              # plus a py-spy profile of one gateway worker

One session starts the simulated downstreams (examples/simulator.py, via
bench/downstream.py), the gateway the production way (gunicorn with
gateway_project/gunicorn.conf.py, gevent workers, its own SQLite database with
examples/checkout.yaml imported by ``manage.py gateway import``) and
bench/reference_aggregator.py, drives each with wrk, and writes a markdown
report to bench/results/<date>-<time>.md and stdout. bench/README.md explains
every column.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"

if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
    os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # `python bench/run.py` from any interpreter

import downstream  # noqa: E402
import jwt  # noqa: E402
import loadgen  # noqa: E402
import paired  # noqa: E402
import procstat  # noqa: E402
import profiling  # noqa: E402
import servers  # noqa: E402
import variants  # noqa: E402

CHECKOUT_PATH = "/v1/checkout/summary"
JWT_SECRET_ENV = "GATEWAY_JWT_SECRET"
BENCH_JWT_SECRET = "bench-jwt-secret-not-a-real-one-0123456789"
# The gateway gets a clean environment: nothing from the caller's shell decides what is measured.
STRIPPED_ENV_PREFIXES = ("GATEWAY_", "OTEL_", "DJANGO_", "PROMETHEUS_", "CELERY_")
STRIPPED_ENV = {"DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY", "PORT", "ALLOWED_HOSTS"}


@dataclass
class Point:
    """One (target, variant, clients) measurement, or why there is none."""

    target: str
    variant: str
    clients: int
    result: loadgen.WrkResult | None = None
    cpu_ms_per_request: float = 0.0
    on_cpu_ms_per_request: float = 0.0  # the scheduler's own count (schedstat, ns): no tick sampling
    runs_per_request: float = 0.0
    server_cpu_pct: float = 0.0
    rss_before_mib: float = 0.0
    rss_after_mib: float = 0.0
    wrk_cpu_pct: float = 0.0
    simulator_cpu_pct: float = 0.0
    foreign_cpu_pct: float = 0.0
    steal_pct: float = 0.0
    note: str = ""


@dataclass
class Session:
    args: argparse.Namespace
    workdir: Path
    server_cpus: str | None
    load_cpus: str | None
    simulator: servers.Managed
    ports: dict[str, int]
    token: str
    critical_path_ms: float
    points: list[Point] = field(default_factory=list)
    profile_md: str = ""
    calibration: loadgen.WrkResult | None = None
    rounds: dict[tuple[str, str, int], list[paired.Sample | None]] = field(default_factory=dict)  # side by side

    @property
    def measured_cpus(self) -> list[int] | None:
        """The CPUs the server runs on (None: not pinned, the whole machine)."""
        return _cpu_list(self.server_cpus) if self.server_cpus else None


# ---------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------


@dataclass
class Target:
    """A server under measurement, checked and warmed up."""

    name: str
    variant: str
    server: servers.Managed
    url: str
    token: str
    warm_note: str = ""


def measure(session: Session, target: str, variant: str, server: servers.Managed, url: str, token: str) -> None:
    """Check one real answer, warm up, then one wrk run per client count."""
    ready = prepare(session, target, variant, server, url, token)
    if ready is not None:
        for clients in session.args.clients:
            session.points.append(measure_point(session, ready, clients))


def prepare(
    session: Session, target: str, variant: str, server: servers.Managed, url: str, token: str
) -> Target | None:
    """The target warmed up, or None (and a "not serving" row) when it does not answer the checkout."""
    ok, detail = servers.check_checkout(url + CHECKOUT_PATH, token)
    if not ok:
        session.points.append(Point(target, variant, 0, note=f"not serving: {detail}"))
        print(f"  {target} [{variant}]: not serving ({detail})", file=sys.stderr)
        return None
    ready = Target(target, variant, server, url, token)
    ready.warm_note = warm_up(session, server, url, token, _wrk_args(session, token))
    return ready


def _wrk_args(session: Session, token: str) -> dict[str, object]:
    return {"threads": session.args.wrk_threads, "token": token, "cpus": session.load_cpus}


def measure_point(session: Session, ready: Target, clients: int) -> Point:
    """One wrk run at ``clients`` connections, with the server's CPU, memory and log around it."""
    args = session.args
    target, variant, server, url = ready.name, ready.variant, ready.server, ready.url
    wrk_args = _wrk_args(session, ready.token)
    if args.point_warmup:  # steady state at this client count: a step from the last point is not measured
        loadgen.run_wrk(url + CHECKOUT_PATH, clients=clients, duration_s=args.point_warmup, **wrk_args)  # type: ignore[arg-type]
    log_offset = server.log_size()
    before, sim_before = procstat.sample_tree(server.pid), procstat.cpu_ticks(session.simulator.pid)
    cores_before = procstat.sample_cores(session.measured_cpus)
    started = time.monotonic()
    result = loadgen.run_wrk(url + CHECKOUT_PATH, clients=clients, duration_s=args.duration, **wrk_args)  # type: ignore[arg-type]
    wall_s = time.monotonic() - started
    after, sim_after = procstat.sample_tree(server.pid), procstat.cpu_ticks(session.simulator.pid)
    cores_after = procstat.sample_cores(session.measured_cpus)
    server_ms = procstat.ticks_to_ms(after.ticks - before.ticks)
    ours = after.ticks - before.ticks
    if session.measured_cpus is None:  # unpinned: everything we run shares the machine
        ours += sim_after - sim_before + round(result.cpu_s * procstat.TICKS_PER_S)
    foreign_pct, steal_pct = _foreign(cores_before, cores_after, ours, session.measured_cpus)
    point = Point(
        target,
        variant,
        clients,
        result=result,
        cpu_ms_per_request=server_ms / result.requests if result.requests else 0.0,
        on_cpu_ms_per_request=procstat.thread_delta(before.on_cpu_ns, after.on_cpu_ns) / 1e6 / result.requests
        if result.requests
        else 0.0,
        runs_per_request=procstat.thread_delta(before.runs, after.runs) / result.requests if result.requests else 0.0,
        server_cpu_pct=server_ms / 10 / wall_s,
        rss_before_mib=before.rss_per_worker_mib,
        rss_after_mib=after.rss_per_worker_mib,
        wrk_cpu_pct=result.cpu_s * 100 / wall_s,
        simulator_cpu_pct=procstat.ticks_to_ms(sim_after - sim_before) / 10 / wall_s,
        foreign_cpu_pct=foreign_pct,
        steal_pct=steal_pct,
    )
    time.sleep(SETTLE_S)  # requests still in flight when wrk stopped finish (and log) before the next point
    notes = [ready.warm_note] if ready.warm_note else []
    opened = breakers_opened(server.log_since(log_offset))
    if opened:
        notes.append(f"breaker opened: {', '.join(opened)}")
    if after.workers != before.workers:
        notes.append("a worker was replaced during the run")
    point.note = "; ".join(notes)
    ready.warm_note = ""
    print(f"  {target} [{variant}] {clients:>4} clients: {_summary(point, session)}", file=sys.stderr)
    return point


def warm_up(session: Session, server: servers.Managed, url: str, token: str, wrk_args: dict[str, object]) -> str:
    """Bring every worker to steady state: a few requests one at a time, then a ramp to the highest load.

    A cold worker builds its runtime on the first request; a burst of clients at
    that moment can time out calls and open breakers, which would turn the
    measurement into a measurement of fast 502s. Returns a note when the gateway
    still is not answering correctly afterwards (or a breaker opened meanwhile).
    """
    args = session.args
    offset = server.log_size()
    for _ in range(4 * args.workers):
        servers.check_checkout(url + CHECKOUT_PATH, token)
    if args.warmup:
        for clients in sorted({min(args.clients), max(args.clients)}):
            loadgen.run_wrk(url + CHECKOUT_PATH, clients=clients, duration_s=args.warmup, **wrk_args)  # type: ignore[arg-type]
        time.sleep(SETTLE_S)
    notes = []
    opened = breakers_opened(server.log_since(offset))
    if opened:
        notes.append(f"breaker opened during warm-up: {', '.join(opened)}")
    ok, detail = servers.check_checkout(url + CHECKOUT_PATH, token)
    if not ok:
        notes.append(f"after warm-up: {detail[:120]}")
    return "; ".join(notes)


SETTLE_S = 1.0
BREAKER_OPENED = re.compile(r"breaker (\S+): \S+ -> open")


def breakers_opened(log_text: str) -> list[str]:
    """Services whose breaker opened, from the gateway's log lines ("breaker cart: closed -> open")."""
    return sorted(set(BREAKER_OPENED.findall(log_text)))


def _foreign(
    before: procstat.CoreSample, after: procstat.CoreSample, ours: int, cpus: list[int] | None
) -> tuple[float, float]:
    """CPU used by processes not ours, and stolen by the hypervisor, on the measured CPUs (% of one CPU)."""
    width = len(cpus) if cpus is not None else (os.cpu_count() or 1)
    per_cpu_ticks = (after.total - before.total) / width
    if per_cpu_ticks <= 0:
        return 0.0, 0.0
    foreign = max(0, after.busy - before.busy - ours) * 100 / per_cpu_ticks
    return foreign, (after.steal - before.steal) * 100 / per_cpu_ticks


def _summary(point: Point, session: Session) -> str:
    r = point.result
    assert r is not None
    p50 = r.latency_ms["p50"]
    return (
        f"{r.rps:7.1f} req/s  p50 {p50:7.1f} ms (+{p50 - session.critical_path_ms:.1f})  "
        f"p99 {r.latency_ms['p99']:7.1f} ms  {point.cpu_ms_per_request:.2f} CPU ms/req "
        f"({point.on_cpu_ms_per_request:.2f} on-CPU)  "
        f"{point.runs_per_request:.1f} runs/req  failed {r.failed}"
    )


def run_reference(session: Session, env: dict[str, str]) -> None:
    server, url = _start_reference(session, env)
    try:
        measure(session, "reference", REFERENCE_VARIANT, server, url, session.token)
    finally:
        server.stop()


def run_floor(session: Session, env: dict[str, str]) -> None:
    server, url = _start_floor(session, env)
    try:
        measure(session, "floor", FLOOR_VARIANT, server, url, session.token)
    finally:
        server.stop()


def run_side_by_side(session: Session, base_env: dict[str, str]) -> None:
    """Every server of the run up at once — the gateway (each feature variant with
    ``--features``) and the reference — measured in turn at each client count for
    ``--rounds`` rounds, the order reversed on every other pass, so a drift in the shared
    machine's speed falls on all of them alike. A row is the round with the median CPU
    per request (the other rounds' values in its notes)."""
    args = session.args
    running: list[servers.Managed] = []
    ready: list[Target] = []
    try:
        if "gateway" in args.targets:
            for variant, server, url, token in _gateway_variants(session, base_env):
                running.append(server)
                target = prepare(session, "gateway", variant.name, server, url, token)
                ready += [target] if target is not None else []
        if "reference" in args.targets:
            server, url = _start_reference(session, base_env)
            running.append(server)
            target = prepare(session, "reference", REFERENCE_VARIANT, server, url, session.token)
            ready += [target] if target is not None else []
        if "floor" in args.targets:
            server, url = _start_floor(session, base_env)
            running.append(server)
            target = prepare(session, "floor", FLOOR_VARIANT, server, url, session.token)
            ready += [target] if target is not None else []
        measured: dict[tuple[str, str, int], list[Point]] = {}
        passes = 0
        for _ in range(args.rounds):
            for clients in args.clients:
                for target in ready if passes % 2 == 0 else ready[::-1]:
                    point = measure_point(session, target, clients)
                    measured.setdefault((target.name, target.variant, clients), []).append(point)
                passes += 1
        for target in ready:
            for clients in args.clients:
                session.points.append(_median_round(measured[(target.name, target.variant, clients)]))
        session.rounds = {key: [_sample(point) for point in points] for key, points in measured.items()}
        gateways = [target for target in ready if target.name == "gateway"]
        if args.profile and gateways:
            first = gateways[0]
            session.profile_md = profile(session, first.server, first.url, first.token)
    finally:
        for server in reversed(running):
            server.stop()


def _sample(point: Point) -> paired.Sample | None:
    r = point.result
    if r is None or not r.requests:
        return None
    return paired.Sample(point.cpu_ms_per_request, r.rps, r.latency_ms["p50"], r.latency_ms["p99"])


def _median_round(points: list[Point]) -> Point:
    ranked = sorted(points, key=lambda point: point.cpu_ms_per_request)
    median = ranked[len(ranked) // 2]
    if len(points) > 1:
        rounds = " / ".join(f"{point.cpu_ms_per_request:.2f}" for point in points)
        on_cpu = " / ".join(f"{point.on_cpu_ms_per_request:.2f}" for point in points)
        summary = f"median of {len(points)} rounds, CPU ms/req {rounds}, on-CPU ms/req {on_cpu}"
        median.note = "; ".join(part for part in (median.note, summary) if part)
    return median


REFERENCE_VARIANT = "aiohttp, JWT verified"
FLOOR_VARIANT = "bare WSGI on gunicorn+gevent, httptools, orjson, JWT verified"


def _start_floor(session: Session, env: dict[str, str]) -> tuple[servers.Managed, str]:
    """bench/floor_server.py: the card's serving stack with none of the gateway's layers."""
    return servers.start_floor(
        session.workdir,
        ports=session.ports,
        workers=session.args.workers,
        cpus=session.server_cpus,
        jwt_env=JWT_SECRET_ENV,
        env=env,
    )


def _start_reference(session: Session, env: dict[str, str]) -> tuple[servers.Managed, str]:
    return servers.start_reference(
        session.workdir,
        ports=session.ports,
        workers=session.args.workers,
        cpus=session.server_cpus,
        jwt_env=JWT_SECRET_ENV,
        env=env,
    )


def _start_gateway_variant(
    session: Session, base_env: dict[str, str], variant: variants.Variant, index: int
) -> tuple[servers.Managed, str] | None:
    """A gateway with the variant's configuration and environment, or None (and a row saying why).
    With ``--redis-url``, the ``index``-th variant's state in a Redis database of its own."""
    env = gateway_variant_env(session.workdir, base_env, variant, index)
    slug = _slug(variant)
    config = variants.base_config(session.ports)
    config_path = variants.write_config(variant.transform(config), session.workdir / f"gateway-{slug}.yaml")
    try:
        commit = env.pop(COMMIT_VARIABLE, None)
        root = export_commit(commit, session.workdir / f"source-{slug}") if commit else ROOT
        servers.prepare_gateway(session.workdir, config_path, env, root=root)
        workers = int(variant.env.get("WEB_CONCURRENCY", session.args.workers))  # a variant may set its own
        return servers.start_gateway(session.workdir, env=env, workers=workers, cpus=session.server_cpus, root=root)
    except RuntimeError as error:
        print(f"  gateway [{variant.name}]: {error}", file=sys.stderr)
        first_line = str(error).splitlines()[0]
        session.points.append(Point("gateway", variant.name, 0, note=f"did not start: {first_line}"))
        return None


OWN_REDIS = "own"  # --redis-url own: the run starts its own Redis, pinned with the load side
COMMIT_VARIABLE = "BENCH_GATEWAY_COMMIT"  # a variant's gateway from another commit: before and after in one run


def export_commit(commit: str, into: Path) -> Path:
    """``commit``'s tree (git archive) in ``into``: a gateway to run beside this checkout's."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True, timeout=60)
    if archive.returncode != 0:
        raise RuntimeError(f"git archive {commit} failed: {archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True, timeout=60)
    return into


def _slug(variant: variants.Variant) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in variant.name)


def gateway_variant_env(
    workdir: Path, base_env: dict[str, str], variant: variants.Variant, index: int
) -> dict[str, str]:
    """The environment of the ``index``-th gateway variant: its own SQLite database and
    Prometheus directory and, when the run has a REDIS_URL the variant does not set itself,
    its own Redis database (``variants.redis_url_of_variant``)."""
    slug = _slug(variant)
    metrics_dir = workdir / f"prometheus-{slug}"
    metrics_dir.mkdir(exist_ok=True)
    env = {
        **base_env,
        "DATABASE_URL": f"sqlite:///{workdir / f'gateway-{slug}.sqlite3'}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        **variant.env,
    }
    if base_env.get("REDIS_URL") and "REDIS_URL" not in variant.env:
        env["REDIS_URL"] = variants.redis_url_of_variant(base_env["REDIS_URL"], index)
    return env


def _gateway_variants(
    session: Session, base_env: dict[str, str]
) -> Iterator[tuple[variants.Variant, servers.Managed, str, str]]:
    """(variant, server, url, token) of each gateway variant that starts; a row saying
    why for each that cannot run or did not start. The caller stops the servers."""
    extra = [variants.Variant(name, env=env) for name, env in session.args.gateway_variant]
    if session.args.resilience_variant:
        extra.append(variants.resilience_variant())
    for index, variant in enumerate([*variants.variants(session.args.features, session.args.redis_variant), *extra]):
        if variant.unavailable:
            session.points.append(Point("gateway", variant.name, 0, note=variant.unavailable))
            continue
        started = _start_gateway_variant(session, base_env, variant, index)
        if started is not None:
            yield variant, *started, session.token if variant.jwt else ""


def run_gateway(session: Session, base_env: dict[str, str]) -> None:
    args = session.args
    for variant, server, url, token in _gateway_variants(session, base_env):
        try:
            measure(session, "gateway", variant.name, server, url, token)
            serving = any(p.result for p in session.points if p.target == "gateway" and p.variant == variant.name)
            if args.profile and serving and not session.profile_md:
                session.profile_md = profile(session, server, url, token)
        finally:
            server.stop()


def profile(session: Session, server: servers.Managed, url: str, token: str) -> str:
    """py-spy on both workers during one more run (not in the tables), at the lowest client count by default:
    a profile of healthy answers, not of the fast 502s an overloaded gateway gives once a breaker opens."""
    args = session.args
    workers = procstat.children(server.pid)
    out_dir = args.out
    duration = args.profile_seconds or max(args.duration, 5)
    svg, raw = out_dir / "profile.svg", session.workdir / "profile.raw"
    recorders = [
        profiling.start_recording(workers[0], svg, duration_s=duration, fmt="flamegraph"),
        profiling.start_recording(workers[-1], raw, duration_s=duration, fmt="raw"),
    ]
    time.sleep(0.5)
    clients = args.profile_clients or min(args.clients)
    result = loadgen.run_wrk(
        url + CHECKOUT_PATH,
        clients=clients,
        duration_s=duration,
        threads=args.wrk_threads,
        token=token,
        cpus=session.load_cpus,
    )
    for recorder in recorders:
        try:
            _, err = recorder.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            err = b"timed out"
        if recorder.returncode != 0:
            return f"py-spy failed ({recorder.returncode}): {err.decode(errors='replace')[-500:]}"
    shutil.copy(raw, out_dir / "profile.raw.txt")
    summary = profiling.summarize(raw, ROOT)
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(result.statuses.items()))
    header = (
        f"Profiled: gateway worker {workers[-1]} during {duration} s at {clients} clients, "
        f"downstream latency scale {args.latency_scale:g}; answers during the profile: {statuses or 'none'} "
        f"({result.rps:.0f} req/s, slowed by the profiler). Flame graph of the other worker: "
        f"`{svg.relative_to(ROOT) if svg.is_relative_to(ROOT) else svg}`.\n\n"
    )
    by_layer = "**By layer** (`bench/profiling.py` LAYERS)\n\n" + profiling.layers_markdown(profiling.layers(raw))
    return header + by_layer + "\n" + profiling.markdown(summary)


def calibrate(session: Session) -> None:
    """The load side's own ceiling: wrk against the simulator's instant 404 route, both on the load core."""
    if not session.args.calibrate:
        return
    url = f"http://{servers.HOST}:{session.ports['tax']}/calibration"
    session.calibration = loadgen.run_wrk(
        url,
        clients=max(session.args.clients),
        duration_s=max(1, min(session.args.duration, 3)),
        threads=session.args.wrk_threads,
        method="GET",
        cpus=session.load_cpus,
    )


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def git_commit() -> str:
    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return f"{commit}{' (with uncommitted changes)' if dirty else ''}"


def _ms(value: float) -> str:
    return f"{value:.1f}"


def _row(point: Point, critical_ms: float) -> str:
    r = point.result
    if r is None:
        return f"| {point.target} | {point.variant} | {point.clients or '—'} | {point.note} |" + " |" * 13
    cells = [
        point.target,
        point.variant,
        str(point.clients),
        f"{r.rps:.1f}",
        _ms(r.latency_ms["p50"]),
        _ms(r.latency_ms["p90"]),
        _ms(r.latency_ms["p99"]),
        f"{r.latency_ms['p50'] - critical_ms:+.1f}",
        f"{point.cpu_ms_per_request:.2f}",
        f"{point.on_cpu_ms_per_request:.2f}",
        f"{point.runs_per_request:.2f}",
        f"{point.server_cpu_pct:.0f}",
        f"{point.rss_before_mib:.0f} → {point.rss_after_mib:.0f}",
        _failed(r),
        f"{point.wrk_cpu_pct:.0f}",
        f"{point.simulator_cpu_pct:.0f}",
        f"{point.foreign_cpu_pct:.0f} / {point.steal_pct:.0f}",
    ]
    if point.note:
        cells[-1] += f" — {point.note}"
    return "| " + " | ".join(cells) + " |"


def _failed(r: loadgen.WrkResult) -> str:
    """Failed requests, by HTTP status and by socket error kind, then the 2xx answers that
    were partial: "12 (502: 10, timeout 2); partial 3"."""
    partial = f"; partial {r.partial}" if r.partial else ""
    if not r.failed:
        return f"0{partial}"
    kinds = [f"{status}: {n}" for status, n in sorted(r.statuses.items()) if status >= 400]
    kinds += [f"{kind} {n}" for kind, n in r.errors.items() if n and kind != "status"]
    return f"{r.failed} ({', '.join(kinds)}){partial}"


HEADER = (
    "| target | variant | clients | req/s | p50 ms | p90 ms | p99 ms | p50 - critical path ms | "
    "server CPU ms/req | on-CPU ms/req | CPU runs/req | server CPU % | RSS/worker MiB before → after | "
    "failed | wrk CPU % | simulator CPU % | others / steal % on server CPU |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _feature_table(points: list[Point]) -> list[str]:
    base = {p.clients: p for p in points if p.target == "gateway" and p.variant == "all on" and p.result}
    lines = [
        "| variant | clients | req/s | p50 ms | p99 ms | CPU ms/req | Δ CPU ms/req vs all on |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        if p.target != "gateway":
            continue
        if p.result is None:
            lines.append(f"| {p.variant} | {p.clients or '—'} | {p.note} | | | | |")
            continue
        ref = base.get(p.clients)
        delta = f"{p.cpu_ms_per_request - ref.cpu_ms_per_request:+.2f}" if ref and p.variant != "all on" else ""
        r = p.result
        lines.append(
            f"| {p.variant} | {p.clients} | {r.rps:.1f} | {_ms(r.latency_ms['p50'])} | {_ms(r.latency_ms['p99'])} "
            f"| {p.cpu_ms_per_request:.2f} | {delta} |"
        )
    return lines


def report(session: Session, started: dt.datetime, load_start: str, load_end: str) -> str:
    args = session.args
    pin = (
        f"gateway, reference and floor (master + workers) pinned to CPU {session.server_cpus}; "
        f"wrk and the simulator to CPU {session.load_cpus} (taskset -c)"
        if session.server_cpus
        else "no CPU pinning (--no-pin, or fewer than 2 usable CPUs)"
    )
    lines = [
        f"# Checkout benchmark, {started:%Y-%m-%d %H:%M} (local time)",
        "",
        f"- Commit: {git_commit()}",
        f"- Machine: {os.cpu_count()} CPUs ({procstat.cpu_model()}), Python {sys.version.split()[0]}, "
        f"load average at start {load_start}, at end {load_end}",
        f"- Pinning: {pin}",
        f"- Downstreams: examples/simulator.py (cart, inventory, pricing, shipping, tax), latency scale "
        f"{args.latency_scale:g}, jitter ±{args.latency_jitter:.0%}; critical path {session.critical_path_ms:.0f} ms "
        "(cart, then the slowest of inventory/pricing/shipping, then tax)",
        f"- Gateway: gunicorn -c gateway_project/gunicorn.conf.py gateway_project.wsgi (gevent), "
        f"WEB_CONCURRENCY={args.workers}, SQLite with examples/checkout.yaml imported "
        "(rate limits raised to 10^9 and bulkheads to 10,000: checked, never reached), "
        + (
            f"REDIS_URL={args.redis_url} ({getattr(args, 'redis_placement', 'the Redis given')}; "
            "each further variant on the next database)"
            if args.redis_url
            else "no Redis (in-process state)"
        )
        + ", PROMETHEUS_MULTIPROC_DIR set, access log to a file",
        f"- Reference: bench/reference_aggregator.py, aiohttp, {args.workers} worker processes, HS256 JWT verified",
        f"- Load: wrk {args.wrk_threads} thread(s), POST {CHECKOUT_PATH} with a JSON body and a bearer token, "
        f"{args.duration} s per point after a {args.warmup} s warm-up per server and {args.point_warmup} s at the "
        "point's client count (not counted), --timeout 30s",
        "- Order: "
        + (
            "each server (and variant) alone, every point of one before the next"
            if args.sequential
            else "every server (and variant) up at once, measured in turn at each client count, the order "
            f"reversed on every other pass, {args.rounds} round(s); a row with several rounds is the median one"
        ),
    ]
    if session.calibration:
        c = session.calibration
        lines.append(
            f"- Load-side ceiling: wrk → simulator (instant 404 route) at {c.clients} clients on the load CPU: "
            f"{c.rps:.0f} req/s. Each gateway request costs the load side 1 wrk request + 5 simulator answers, "
            "so watch the wrk/simulator CPU % columns: their sum near 100 % means the load side, not the "
            "server, is the limit."
        )
    lines += ["", "## Results", "", HEADER]
    asked = {"all on", *(name for name, _ in args.gateway_variant)}  # --features' variants: their own table
    if args.resilience_variant:
        asked.add(variants.resilience_variant().name)
    main_points = [p for p in session.points if p.target != "gateway" or p.variant in asked]
    main_points.sort(key=lambda p: p.target != "gateway")  # stable: each target's rows in client order
    lines += [_row(p, session.critical_path_ms) for p in main_points]
    by_round = paired.table(session.rounds, session.critical_path_ms)
    if by_round:
        lines += [
            "",
            "## Round by round",
            "",
            "Each gateway's CPU per request and req/s divided by the reference's (and the floor's) of the "
            "same round, measured one right after the other: the median of those paired ratios, their "
            "range, and the rounds that met the CPU bar; latencies over the critical path by round.",
            "",
            *by_round,
        ]
    if args.features:
        lines += ["", "## Feature matrix (gateway)", "", *_feature_table(session.points)]
    if session.profile_md:
        lines += ["", "## Profile", "", session.profile_md]
    lines += [
        "",
        "Columns: bench/README.md. CPU ms/req is utime+stime of the server's master and workers "
        "(from /proc/<pid>/stat) over the point, divided by the requests wrk completed; on-CPU ms/req the "
        "same processes' time on a CPU by the scheduler's exact count (/proc/<pid>/task/*/schedstat).",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _clients(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("a comma-separated list of positive integers")
    return values


def _env_variant(text: str) -> tuple[str, dict[str, str]]:
    """``NAME:KEY=VALUE[,KEY=VALUE]`` -> (name, env)."""
    name, _, assignments = text.partition(":")
    pairs = [item.partition("=") for item in assignments.split(",") if item]
    if not name or not pairs or any(not key or not sep for key, sep, _ in pairs):
        raise argparse.ArgumentTypeError("NAME:KEY=VALUE[,KEY=VALUE]")
    env = {key: value for key, _, value in pairs}
    if not env.get("WEB_CONCURRENCY", "1").isdigit() or env.get("WEB_CONCURRENCY") == "0":
        raise argparse.ArgumentTypeError("WEB_CONCURRENCY of a variant must be a whole number of workers >= 1")
    return name, env


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=_clients, default=None, help="connections per point (default 10,50,200)")
    parser.add_argument("--duration", type=int, default=None, help="seconds per point (default 10; --quick: 2)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up seconds per server (default 2; --quick: 1)")
    parser.add_argument(
        "--point-warmup",
        type=int,
        default=None,
        help="seconds at a point's client count right before it is measured, not counted (default 2; --quick: 0): "
        "a point measures the steady state, not the step from the previous point",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke: 2 s points")
    parser.add_argument(
        "--targets",
        default="gateway,reference,floor",
        help="comma-separated: gateway, reference, floor (bench/floor_server.py) (default all three)",
    )
    parser.add_argument("--features", action="store_true", help="also measure the gateway with each feature off")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="each server (and variant) alone, one after the other (default: all up, measured in turn per count)",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="measure every point N times in turn; a row is the median round"
    )
    parser.add_argument("--latency-scale", type=float, default=1.0, help="downstream latency multiplier (0: none)")
    parser.add_argument(
        "--latency-jitter",
        type=float,
        default=0.0,
        help="spread each downstream delay uniformly over latency * (1 ± J) (default 0: exact latencies)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes of gateway and reference")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--server-cpus", default="1", help="taskset list for gateway/reference (default 1)")
    parser.add_argument("--load-cpus", default="0", help="taskset list for wrk and the simulator (default 0)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument(
        "--redis-url",
        default=None,
        help="run the gateway with this REDIS_URL (default: none); each further variant (--features, "
        "--gateway-variant) on the next database number (mod 16), so variants share no breakers or counters. "
        f"'{OWN_REDIS}': a private redis-server pinned to the load CPUs (Redis off the server's core, as on a "
        "host of its own; a machine's shared Redis runs wherever the scheduler puts it, often on the server's core)",
    )
    parser.add_argument(
        "--redis-variant",
        default=None,
        metavar="URL",
        help="with --features: one more variant, all on with shared state in this Redis database (use your own)",
    )
    parser.add_argument(
        "--gateway-variant",
        type=_env_variant,
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="one more gateway, all on with these environment variables (repeatable), e.g. "
        "'no gate:GATEWAY_MAX_IN_FLIGHT=0' or 'one worker:WEB_CONCURRENCY=1' (its own worker count); "
        f"{COMMIT_VARIABLE}=REV runs that commit's gateway (same venv), e.g. 'before:{COMMIT_VARIABLE}=6b9a726'",
    )
    parser.add_argument(
        "--resilience-variant",
        action="store_true",
        help="one more gateway, all on plus every issue-14 resilience feature configured but not triggered "
        "(bench/resilience_config.py)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy one gateway worker (bench/results/profile.*)")
    parser.add_argument(
        "--profile-seconds", type=int, default=None, help="py-spy duration (default: --duration, at least 5)"
    )
    parser.add_argument("--profile-clients", type=int, default=None, help="clients while profiling (default: fewest)")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false", help="skip the load-side ceiling")
    parser.add_argument("--out", type=Path, default=BENCH / "results", help="report directory (default bench/results)")
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs, configs and databases")
    args = parser.parse_args(argv)
    args.clients = args.clients or [10, 50, 200]
    args.duration = args.duration or (2 if args.quick else 10)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    args.point_warmup = args.point_warmup if args.point_warmup is not None else (0 if args.quick else 2)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if args.sequential and args.rounds != 1:
        parser.error("--rounds needs the side-by-side order (drop --sequential)")
    unknown = set(args.targets) - {"gateway", "reference", "floor"}
    if unknown:
        parser.error(f"unknown target(s): {', '.join(sorted(unknown))}")
    if args.latency_scale < 0:
        parser.error("--latency-scale must be >= 0")
    if not 0 <= args.latency_jitter < 1:
        parser.error("--latency-jitter must be in [0, 1)")
    return args


def _pins(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if args.no_pin or shutil.which("taskset") is None:
        return None, None
    usable = os.sched_getaffinity(0)
    wanted = {int(cpu) for spec in (args.server_cpus, args.load_cpus) for cpu in _cpu_list(spec)}
    if len(usable) < 2 or not wanted <= usable:
        return None, None
    return args.server_cpus, args.load_cpus


def _cpu_list(spec: str) -> list[int]:
    cpus: list[int] = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def mint_token(config: dict[str, object]) -> str:
    settings = ((config.get("layer") or {}).get("auth") or {}).get("jwt") or {}  # type: ignore[union-attr]
    now = int(time.time())
    claims: dict[str, object] = {settings.get("user_claim", "sub"): "42", "iat": now, "exp": now + 86400}
    if settings.get("issuer"):
        claims["iss"] = settings["issuer"]
    if settings.get("audience"):
        claims["aud"] = settings["audience"]
    return jwt.encode(claims, BENCH_JWT_SECRET, algorithm="HS256")


def clean_env() -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in STRIPPED_ENV and not key.startswith(STRIPPED_ENV_PREFIXES)
    }
    env.update(
        DJANGO_SECRET_KEY="bench-django-secret-key-not-a-real-one",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        GATEWAY_JWT_SECRET=BENCH_JWT_SECRET,
        PATH=f"{VENV_PYTHON.parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if loadgen.wrk_path() is None:
        print("bench: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started, load_start = dt.datetime.now(), procstat.loadavg()
    server_cpus, load_cpus = _pins(args)
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    env = clean_env()
    redis_server = None
    if args.redis_url == OWN_REDIS:
        try:
            redis_server, args.redis_url = servers.start_redis(workdir, cpus=load_cpus)
        except RuntimeError as error:  # no redis-server, or it would not start: say so, no traceback
            print(f"bench: --redis-url {OWN_REDIS}: {error}", file=sys.stderr)
            shutil.rmtree(workdir, ignore_errors=True)
            return 2
        args.redis_placement = f"a private redis-server on CPU {load_cpus}" if load_cpus else "a private redis-server"
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    simulator, ports = servers.start_simulator(
        workdir, latency_scale=args.latency_scale, latency_jitter=args.latency_jitter, cpus=load_cpus
    )
    session = Session(
        args=args,
        workdir=workdir,
        server_cpus=server_cpus,
        load_cpus=load_cpus,
        simulator=simulator,
        ports=ports,
        token=mint_token(variants.base_config(ports)),
        critical_path_ms=downstream.critical_path_ms(args.latency_scale),
    )
    try:
        calibrate(session)
        if args.sequential:
            if "gateway" in args.targets:
                run_gateway(session, env)
            if "reference" in args.targets:
                run_reference(session, env)
            if "floor" in args.targets:
                run_floor(session, env)
        else:
            run_side_by_side(session, env)
    finally:
        simulator.stop()
        if redis_server is not None:
            redis_server.stop()
        if args.keep_workdir:
            print(f"bench: logs, configs and databases kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    name = f"{started:%Y-%m-%d-%H%M%S}{'-quick' if args.quick else ''}.md"
    publish(report(session, started, load_start, procstat.loadavg()), args.out / name)
    return 0


def publish(text: str, path: Path) -> None:
    """A report to stdout and to ``path`` (its directory made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)
    print(f"bench/{Path(sys.argv[0]).name}: report written to {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
