"""Connections spread over the workers that share one listening socket (``gateway_project.accept_balance``)."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import gevent
import gevent.socket
import pytest

from gateway_project.accept_balance import AcceptTable, BalancedStreamServer, WorkerSlot


def _joined(table: AcceptTable, taken: list[SimpleNamespace], pid: int) -> WorkerSlot:
    """A worker as the master forks it (``claim``) and as it starts serving (``join``)."""
    worker = SimpleNamespace(accept_slot=table.claim(taken))
    taken.append(worker)
    slot = WorkerSlot(table, worker.accept_slot)
    slot.join(pid)
    return slot


def test_the_master_gives_each_worker_the_lowest_free_slot_and_takes_it_back() -> None:
    table = AcceptTable()
    first, second = SimpleNamespace(accept_slot=None), SimpleNamespace(accept_slot=None)
    first.accept_slot = table.claim([])
    second.accept_slot = table.claim([first])
    assert (first.accept_slot, second.accept_slot) == (0, 1)
    table.release(first.accept_slot)
    assert table.claim([second]) == 0  # the exited worker's slot, for its replacement


def test_a_worker_over_its_share_is_the_one_with_more_than_one_connection_above_the_least() -> None:
    table, taken = AcceptTable(), []
    busy, idle = _joined(table, taken, pid=101), _joined(table, taken, pid=102)
    for _ in range(3):
        busy.opened()
    idle.opened()
    assert busy.over_share() and not idle.over_share()  # 3 against 1
    busy.closed()
    assert not busy.over_share()  # 2 against 1: within the slack
    for _ in range(5):
        busy.opened()
    table.release(taken[1].accept_slot)  # the idle worker exited: nobody left to leave connections to
    assert not busy.over_share()


def test_a_worker_forked_but_not_yet_serving_takes_no_part() -> None:
    table, taken = AcceptTable(), []
    serving = _joined(table, taken, pid=201)
    taken.append(SimpleNamespace(accept_slot=table.claim(taken)))  # forked, still loading Django
    for _ in range(10):
        serving.opened()
    assert not serving.over_share()


@pytest.fixture
def listener() -> Iterator[gevent.socket.socket]:
    sock = gevent.socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock
    sock.close()


def _server(listener: gevent.socket.socket, slot: WorkerSlot, accepted: list[str], name: str) -> BalancedStreamServer:
    def handle(client: gevent.socket.socket, _address: object) -> None:
        accepted.append(name)
        client.close()

    server = BalancedStreamServer.bound(slot)(listener, handle=handle)
    server.max_accept = 1  # as gunicorn sets it for more than one worker
    server.start()
    return server


def _connect(listener: gevent.socket.socket) -> gevent.socket.socket:
    client = gevent.socket.create_connection(listener.getsockname())
    gevent.sleep(0.05)  # both servers see the socket readable; the loop runs their callbacks
    return client


def test_the_busier_server_leaves_a_connection_to_the_other(listener: gevent.socket.socket) -> None:
    table, taken = AcceptTable(), []
    busy, idle = _joined(table, taken, pid=301), _joined(table, taken, pid=302)
    for _ in range(5):
        busy.opened()
    accepted: list[str] = []
    servers = [_server(listener, busy, accepted, "busy"), _server(listener, idle, accepted, "idle")]
    try:
        clients = [_connect(listener) for _ in range(3)]
    finally:
        for server in servers:
            server.stop()
    for client in clients:
        client.close()
    assert accepted == ["idle", "idle", "idle"]


def test_with_nobody_else_accepting_the_busier_server_takes_the_connection_after_its_pause(
    listener: gevent.socket.socket,
) -> None:
    table, taken = AcceptTable(), []
    busy, _gone = _joined(table, taken, pid=401), _joined(table, taken, pid=402)  # the other never accepts
    for _ in range(5):
        busy.opened()
    accepted: list[str] = []
    server = _server(listener, busy, accepted, "busy")
    try:
        clients = [_connect(listener) for _ in range(2)]
    finally:
        server.stop()
    for client in clients:
        client.close()
    assert accepted == ["busy", "busy"]  # late by at most the pause, never refused
