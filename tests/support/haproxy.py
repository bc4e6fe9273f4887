"""A real HAProxy (Debian's) in front of gateway instances, for the deployment tests.

Health checks poll each instance's ``/readyz`` every 250 ms (two failures take it out), as an operator's balancer
would (docs/deployment.md gives the production form); a failed connection is retried
on another instance. The admin socket answers ``show stat`` (per-server request counts).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def haproxy_or_skip() -> str:
    """The haproxy binary (scripts/test-deps.sh installs it; under CI=true a skip fails the run)."""
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy is not installed (scripts/test-deps.sh installs it)")
    return HAPROXY


def config_text(listen: tuple[str, int], servers: Sequence[tuple[str, str, int]], stats_socket: Path) -> str:
    lines = [
        "global",
        f"    stats socket {stats_socket} mode 600 level admin",
        "    maxconn 4096",
        "defaults",
        "    mode http",
        "    timeout connect 1s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    retries 3",
        "    option redispatch 1",
        "    retry-on conn-failure empty-response",
        "frontend gateway",
        f"    bind {listen[0]}:{listen[1]}",
        "    default_backend gateways",
        "backend gateways",
        "    balance roundrobin",
        "    option httpchk",
        # Host: one ALLOWED_HOSTS has (Django refuses a request without one)
        "    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost",
        "    http-check expect status 200",
        # Without `timeout check` a check must answer within `inter`: a /readyz slower than
        # 250 ms on a busy machine took every server out at once (the first soak's lesson).
        "    timeout check 2s",
        "    default-server inter 250ms fall 2 rise 2",
    ]
    lines += [f"    server {name} {host}:{port} check" for name, host, port in servers]
    return "\n".join(lines) + "\n"


@dataclass
class HAProxy:
    process: subprocess.Popen[bytes]
    url: str
    stats_socket: Path
    log_path: Path

    def show_stat(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend's servers: name -> CSV fields (status, stot, ...)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.stats_socket))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        rows = data.decode().splitlines()
        header = rows[0].lstrip("# ").split(",")
        stats = {}
        for row in rows[1:]:
            fields = dict(zip(header, row.split(","), strict=False))
            if fields.get("pxname") == "gateways" and fields.get("svname") not in ("BACKEND", None):
                stats[fields["svname"]] = fields
        return stats

    def wait_until(self, states: dict[str, str], timeout_s: float = 20.0) -> None:
        """Until each named server shows ``states[name]`` (UP or DOWN) in ``show stat``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats = self.show_stat()
            if all(stats.get(name, {}).get("status", "").startswith(state) for name, state in states.items()):
                return
            time.sleep(0.1)
        now = {name: (row["status"], row["last_chk"]) for name, row in self.show_stat().items()}
        raise AssertionError(f"haproxy servers never reached {states}: {now}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_haproxy(
    workdir: Path, listen: tuple[str, int], servers: Sequence[tuple[str, str, int]], *, netns: str | None = None
) -> HAProxy:
    """HAProxy listening on ``listen`` in front of ``servers`` (name, host, port); in ``netns`` when given."""
    binary = haproxy_or_skip()
    stats_socket = workdir / "haproxy.sock"
    config = workdir / "haproxy.cfg"
    config.write_text(config_text(listen, servers, stats_socket), encoding="utf-8")
    log_path = workdir / "haproxy.log"
    command = [binary, "-db", "-f", str(config)]
    if netns is not None:
        command = ["ip", "netns", "exec", netns, *command]
    process = subprocess.Popen(command, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    proxy = HAProxy(process, f"http://{listen[0]}:{listen[1]}", stats_socket, log_path)
    deadline = time.monotonic() + 10
    while not stats_socket.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            proxy.stop()
            raise AssertionError("haproxy did not start:\n" + log_path.read_text(errors="replace"))
        time.sleep(0.05)
    return proxy
