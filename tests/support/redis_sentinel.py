"""A real Redis primary, a replica and three sentinels on loopback ports (Debian's
redis-server; ``redis-server <file> --sentinel`` is what the redis-sentinel package runs).
Each process has its own directory; all are stopped by ``stop()``."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.fake_downstream import free_port

MASTER_NAME = "gateway"


def redis_server_or_skip() -> str:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).exists():
        pytest.skip("redis-server is not installed (scripts/test-deps.sh installs it)")
    return binary


@dataclass
class SentinelCluster:
    workdir: Path
    binary: str
    primary_port: int = 0
    replica_port: int = 0
    sentinel_ports: list[int] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def sentinels_setting(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def _start(self, name: str, lines: list[str], *, sentinel: bool = False) -> None:
        directory = self.workdir / name
        directory.mkdir()
        config = directory / "redis.conf"  # sentinels rewrite theirs: it must be writable
        config.write_text("\n".join([f"dir {directory}", 'save ""', "appendonly no", *lines]) + "\n")
        command = [self.binary, str(config), *(["--sentinel"] if sentinel else [])]
        log = (directory / "out.log").open("wb")
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        self.primary_port, self.replica_port = free_port(), free_port()
        self._start("primary", [f"port {self.primary_port}", "bind 127.0.0.1"])
        self._start(
            "replica", [f"port {self.replica_port}", "bind 127.0.0.1", f"replicaof 127.0.0.1 {self.primary_port}"]
        )
        for index in range(3):
            port = free_port()
            self.sentinel_ports.append(port)
            self._start(
                f"sentinel{index}",
                [
                    f"port {port}",
                    "bind 127.0.0.1",
                    f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.primary_port} 2",
                    f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
                    f"sentinel failover-timeout {MASTER_NAME} 10000",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                ],
                sentinel=True,
            )
        self.wait_ready()

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)

    def master_port(self) -> int:
        address = self.client(self.sentinel_ports[0]).execute_command(
            "SENTINEL", "get-master-addr-by-name", MASTER_NAME
        )
        return int(address[1])

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """The replica in sync and every sentinel knowing the replica and the other sentinels."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                replica_up = self.client(self.replica_port).info("replication").get("master_link_status") == "up"
                known = all(self._knows_everyone(port) for port in self.sentinel_ports)
                if replica_up and known:
                    return
            except (redis.RedisError, ValueError):
                pass
            time.sleep(0.2)
        raise AssertionError("the sentinel cluster never got ready:\n" + self.logs())

    def _knows_everyone(self, port: int) -> bool:
        state = self.client(port).sentinel_master(MASTER_NAME)
        return int(state["num-slaves"]) >= 1 and int(state["num-other-sentinels"]) >= 2

    def kill_primary(self) -> None:
        process = self.processes["primary"]
        process.kill()
        process.wait(timeout=10)

    def wait_failover(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if (
                    all(
                        int(self.client(port).execute_command("SENTINEL", "get-master-addr-by-name", MASTER_NAME)[1])
                        == self.replica_port
                        for port in self.sentinel_ports
                    )
                    and self.client(self.replica_port).info("replication").get("role") == "master"
                ):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise AssertionError("no failover:\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + (self.workdir / name / "out.log").read_text(errors="replace")[-2000:]
            for name in self.processes
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
