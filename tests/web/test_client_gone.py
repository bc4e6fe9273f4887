"""The hang-up watch (``orchestration.web.client_gone``) on a gevent socket pair: a client
that closes or resets its connection throws ``ClientGone`` into the watched greenlet at its
wait; bytes from the client, or a hang-up after the watch ended, stop nothing."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import gevent
import gevent.event
import gevent.socket
import pytest

from orchestration.web.client_gone import ClientGone, hang_up_stops

HOLD_S = 5.0  # how long a watched greenlet would wait if nothing stopped it


@pytest.fixture
def pair() -> Iterator[tuple[gevent.socket.socket, gevent.socket.socket]]:
    server, client = gevent.socket.socketpair()
    yield server, client
    server.close()
    client.close()


def serve(server: gevent.socket.socket, work: gevent.event.Event) -> str:
    """A request that waits for ``work`` (or HOLD_S) while its client is watched."""
    try:
        with hang_up_stops({"gunicorn.socket": server}):
            work.wait(HOLD_S)
    except ClientGone:
        return "gone"
    return "answered" if work.is_set() else "waited the whole hold"


def test_a_client_that_closes_stops_the_request_at_its_wait(pair) -> None:
    server, client = pair
    request = gevent.spawn(serve, server, gevent.event.Event())
    gevent.sleep(0)  # it is waiting now
    client.close()
    assert request.get(timeout=HOLD_S / 2) == "gone"


def test_a_client_that_resets_stops_the_request() -> None:
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = gevent.socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        request = gevent.spawn(serve, server, gevent.event.Event())
        gevent.sleep(0)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST, not FIN
        assert request.get(timeout=HOLD_S / 2) == "gone"
    finally:
        server.close()
        listener.close()


def test_bytes_from_the_client_are_not_a_hang_up(pair) -> None:
    server, client = pair
    work = gevent.event.Event()
    request = gevent.spawn(serve, server, work)
    gevent.sleep(0)
    client.sendall(b"GET /next HTTP/1.1\r\n")  # a pipelined next request
    gevent.sleep(0.05)
    client.close()  # the watch ended at the bytes: this hang-up is not seen mid-request
    gevent.sleep(0.05)
    work.set()
    assert request.get(timeout=HOLD_S / 2) == "answered"
    assert server.recv(64) == b"GET /next HTTP/1.1\r\n"  # peeked, never consumed


def test_a_hang_up_after_the_request_ended_throws_nothing(pair) -> None:
    server, client = pair
    work = gevent.event.Event()
    work.set()

    def request_then_more_work() -> str:
        answer = serve(server, work)
        gevent.sleep(0.1)  # a watch left armed would throw ClientGone here
        return answer

    greenlet = gevent.spawn(request_then_more_work)
    gevent.sleep(0)
    client.close()
    assert greenlet.get(timeout=HOLD_S / 2) == "answered"


def test_outside_gunicorns_gevent_worker_nothing_is_watched() -> None:
    plain_server, plain_client = socket.socketpair()
    try:
        with hang_up_stops({"gunicorn.socket": plain_server}):  # not a gevent socket
            plain_client.close()
            gevent.sleep(0.05)
        with hang_up_stops({}):  # Django's test client, runserver
            gevent.sleep(0)
    finally:
        plain_server.close()
