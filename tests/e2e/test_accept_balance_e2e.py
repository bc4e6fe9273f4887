"""A burst of keep-alive connections is shared by gunicorn's workers, not taken by whichever
ran first (``gateway_project.accept_balance``), through the production command."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import GatewayServer, wait_until_every_worker_serves
from tests.e2e.ops_config import ops_config
from tests.support.fake_downstream import FakeDownstream, Route

pytestmark = pytest.mark.e2e

CONNECTIONS = 60


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of the connections accepted on ``port`` (IPv4, ESTABLISHED)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            inodes.add(fields[9])
    return inodes


def _held_by(pid: int, inodes: set[str]) -> int:
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        held += target.startswith("socket:[") and target[8:-1] in inodes
    return held


def _get_healthz(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(65536)
        assert chunk, "the gateway closed a keep-alive connection"
        answer += chunk
    return answer


def test_a_burst_of_connections_is_spread_over_both_workers(
    gateway_server: Callable[..., GatewayServer], fake_downstream: Callable[[dict[str, Route]], FakeDownstream]
) -> None:
    service = fake_downstream({"*": (200, {})})
    server = gateway_server(ops_config(cart=service.url, shipping=service.url), workers=2)
    pids = wait_until_every_worker_serves(server, workers=2)
    port = int(server.env["PORT"])
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(CONNECTIONS)]
    try:
        for client in clients:  # every connection accepted and served, kept open
            assert _get_healthz(client).startswith(b"HTTP/1.1 200")
        inodes = _established_inodes(port)
        held = sorted(_held_by(pid, inodes) for pid in pids)
    finally:
        for client in clients:
            client.close()
    assert sum(held) == CONNECTIONS
    assert held[0] >= CONNECTIONS * 0.4, f"connections per worker: {held}"
