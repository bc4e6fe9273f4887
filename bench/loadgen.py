"""The load generator: Debian's wrk with bench/wrk/checkout.lua.

wrk is event-driven C (one thread drives hundreds of connections), so on its
own core it can push far more than a Python gateway serves; bench/run.py still
measures its CPU on every point (from wait4's rusage) and reports it, so a
saturated load side is visible rather than assumed away.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent / "wrk" / "checkout.lua"


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: counts, latency percentiles (ms) and wrk's own CPU time."""

    clients: int
    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_ms: dict[str, float]
    cpu_s: float
    statuses: dict[int, int] = field(default_factory=dict)
    partial: int = 0  # 2xx answers with "partialData": true (not failures, not the full answer either)
    raw: dict[str, object] = field(repr=False, default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def failed(self) -> int:
        """Requests that did not get a 2xx/3xx answer (wrk's status errors), plus socket errors and timeouts."""
        return sum(self.errors.values())


def wrk_path() -> str | None:
    return shutil.which("wrk")


def pinned(cmd: list[str], cpus: str | None) -> list[str]:
    """Prefix ``cmd`` with ``taskset -c cpus`` when pinning is on and possible."""
    if cpus is None or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", cpus, *cmd]


def run_wrk(
    url: str,
    *,
    clients: int,
    duration_s: int,
    threads: int = 1,
    token: str = "",
    method: str = "POST",
    body: str = '{"cartId":"c-1001"}',
    cpus: str | None = None,
    timeout_s: int = 30,
) -> WrkResult:
    """Run wrk for ``duration_s`` seconds at ``clients`` connections and parse its done() line."""
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    threads = max(1, min(threads, clients))
    cmd = pinned(
        [
            binary,
            f"-t{threads}",
            f"-c{clients}",
            f"-d{max(1, duration_s)}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(LUA),
            url,
        ],
        cpus,
    )
    env = {**os.environ, "BENCH_TOKEN": token, "BENCH_METHOD": method, "BENCH_BODY": body}
    _reaped_child_cpu_s()  # forget children reaped before this run
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    out, err = proc.communicate(timeout=duration_s + timeout_s + 30)
    # communicate() reaped it; the children's rusage is the portable way to get its CPU after the fact.
    return parse(out, err, clients=clients, cpu_s=_reaped_child_cpu_s())


_last_children_cpu = 0.0


def _reaped_child_cpu_s() -> float:
    """CPU seconds of children reaped since the previous call (wrk is the only child reaped meanwhile)."""
    global _last_children_cpu
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = usage.ru_utime + usage.ru_stime
    delta, _last_children_cpu = total - _last_children_cpu, total
    return delta


def parse(out: str, err: str, *, clients: int, cpu_s: float) -> WrkResult:
    line = next((ln for ln in out.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary.\nstdout:\n{out}\nstderr:\n{err}")
    data = json.loads(line.removeprefix("WRK_JSON "))
    latency = {key: value / 1000 for key, value in data["latency_us"].items()}
    return WrkResult(
        clients=clients,
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        errors={key: int(value) for key, value in data["errors"].items()},
        latency_ms=latency,
        cpu_s=cpu_s,
        statuses={int(status): int(count) for status, count in data.get("statuses", {}).items()},
        partial=int(data.get("partial", 0)),
        raw=data,
    )
