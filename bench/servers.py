"""Starting and stopping what the benchmark measures, each in its own session.

Every process is started with ``start_new_session`` so that stopping it means
signalling exactly its own process group (gunicorn's master and workers, the
reference's parent and workers) and nothing else on this shared machine.
Everything binds 127.0.0.1 on free ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from loadgen import pinned
from procstat import children

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
EXPECTED_TOTAL = 16234  # the checkout's total in the simulator's data (examples/simulator.py)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Managed:
    """A process group we started, with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 10) -> None:
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        try:
            with self.log.open("rb") as log_file:
                log_file.seek(offset)
                return log_file.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _spawn(
    name: str,
    cmd: list[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    stdout: int | None = None,
    cwd: Path = ROOT,
):
    with log.open("ab") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=stdout if stdout is not None else log_file,
            stderr=log_file,
            start_new_session=True,
        )
    return Managed(name, proc, log)


def http(
    method: str, url: str, *, body: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    """(status, body bytes) of one request; (0, error text) when nothing answered."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (OSError, urllib.error.URLError) as error:
        return 0, str(error).encode()


def wait_http(url: str, managed: Managed, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not managed.alive():
            raise RuntimeError(f"{managed.name} exited ({managed.proc.returncode}):\n{managed.log_tail()}")
        status, _ = http("GET", url, timeout=1)
        if status == 200:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{managed.name} did not answer {url} within {timeout_s:.0f} s:\n{managed.log_tail()}")


def check_checkout(url: str, token: str) -> tuple[bool, str]:
    """One real checkout request: is the answer the simulator's assembled summary?"""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, body = http("POST", url, body=b'{"cartId":"c-1001"}', headers=headers, timeout=10)
    snippet = body[:300].decode(errors="replace")
    if status != 200:
        return False, f"HTTP {status}: {snippet}"
    try:
        total = json.loads(body).get("total")
    except (ValueError, AttributeError):
        return False, f"HTTP 200 but not a JSON object: {snippet}"
    if total != EXPECTED_TOTAL:
        return False, f"HTTP 200 but total={total!r}, expected {EXPECTED_TOTAL}: {snippet}"
    return True, "ok"


def start_simulator(
    workdir: Path, *, latency_scale: float, cpus: str | None, latency_jitter: float = 0.0
) -> tuple[Managed, dict[str, int]]:
    args = ["--latency-scale", str(latency_scale), "--latency-jitter", str(latency_jitter)]
    cmd = pinned([sys.executable, str(BENCH / "downstream.py"), *args], cpus)
    managed = _spawn("simulator", cmd, workdir / "simulator.log", stdout=subprocess.PIPE)
    assert managed.proc.stdout is not None
    line = managed.proc.stdout.readline()
    if not line:
        managed.stop()
        raise RuntimeError(f"the simulator did not start:\n{managed.log_tail()}")
    return managed, json.loads(line)


def start_redis(workdir: Path, *, cpus: str | None) -> tuple[Managed, str]:
    """A private redis-server (nothing kept on disk) on ``cpus``: the gateway's shared state
    off the server's core, as a Redis on its own host would be in production."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    cmd = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    managed = _spawn("redis", pinned(cmd, cpus), workdir / "redis.log")
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection((HOST, port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    return managed, f"redis://{HOST}:{port}/0"
        except OSError:
            pass
        if time.monotonic() > deadline or not managed.alive():
            managed.stop()
            raise RuntimeError(f"redis-server did not start:\n{managed.log_tail()}")
        time.sleep(0.1)


def start_reference(
    workdir: Path, *, ports: dict[str, int], workers: int, cpus: str | None, jwt_env: str | None, env: dict[str, str]
) -> tuple[Managed, str]:
    port = free_port()
    cmd = [sys.executable, str(BENCH / "reference_aggregator.py"), "--port", str(port), "--workers", str(workers)]
    cmd += [arg for name, p in sorted(ports.items()) for arg in ("--upstream", f"{name}=http://{HOST}:{p}")]
    if jwt_env:
        cmd += ["--jwt-secret-env", jwt_env]
    managed = _spawn("reference", pinned(cmd, cpus), workdir / "reference.log", env=env)
    wait_http(f"http://{HOST}:{port}/healthz", managed)
    _wait_workers(managed, workers)
    return managed, f"http://{HOST}:{port}"


def prepare_gateway(workdir: Path, config_path: Path, env: dict[str, str], *, root: Path = ROOT) -> None:
    """A fresh database with the variant's configuration, imported the product's way
    (``root``: the gateway's source tree; another commit's, exported by bench/run.py)."""
    log = workdir / "gateway-setup.log"
    for args in (["migrate", "--noinput", "-v", "0"], ["gateway", "import", str(config_path)]):
        with log.open("ab") as log_file:
            done = subprocess.run(
                [sys.executable, "manage.py", *args], cwd=root, env=env, stdout=log_file, stderr=log_file, timeout=120
            )
        if done.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{tail}")


def start_gateway(
    workdir: Path, *, env: dict[str, str], workers: int, cpus: str | None, root: Path = ROOT
) -> tuple[Managed, str]:
    """gunicorn the production way (gateway_project/gunicorn.conf.py), but bound to loopback only."""
    port = free_port()
    env = {**env, "PORT": str(port), "WEB_CONCURRENCY": str(workers)}
    cmd = [
        str(VENV_BIN / "gunicorn"),
        "-c",
        "gateway_project/gunicorn.conf.py",
        "--bind",
        f"{HOST}:{port}",  # the config binds 0.0.0.0:$PORT; a benchmark has no business off loopback
        "gateway_project.wsgi",
    ]
    managed = _spawn("gateway", pinned(cmd, cpus), workdir / "gateway.log", env=env, cwd=root)
    wait_http(f"http://{HOST}:{port}/healthz", managed, timeout_s=60)
    _wait_workers(managed, workers)
    return managed, f"http://{HOST}:{port}"


def _wait_workers(managed: Managed, workers: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while len(children(managed.pid)) < workers:
        if time.monotonic() > deadline or not managed.alive():
            raise RuntimeError(f"{managed.name}: {workers} workers did not start:\n{managed.log_tail()}")
        time.sleep(0.1)


def start_floor(
    workdir: Path, *, ports: dict[str, int], workers: int, cpus: str | None, jwt_env: str | None, env: dict[str, str]
) -> tuple[Managed, str]:
    """bench/floor_server.py under gunicorn's gevent workers: the serving stack with nothing of ours on it."""
    port = free_port()
    upstream = {name: f"http://{HOST}:{p}" for name, p in sorted(ports.items())}
    env = {**env, "FLOOR_UPSTREAM": json.dumps(upstream), "FLOOR_JWT_SECRET_ENV": jwt_env or "-"}
    cmd = [
        str(VENV_BIN / "gunicorn"),
        "-k",
        "gevent",
        "-w",
        str(workers),
        "--worker-connections",
        "1000",
        "--chdir",
        str(BENCH),
        "--bind",
        f"{HOST}:{port}",
        "floor_server:app",
    ]
    managed = _spawn("floor", pinned(cmd, cpus), workdir / "floor.log", env=env)
    wait_http(f"http://{HOST}:{port}/healthz", managed)
    _wait_workers(managed, workers)
    return managed, f"http://{HOST}:{port}"
