"""The hang-up watch (``orchestration.web.client_gone``) on gevent socket pairs: a client
that closes or resets its connection marks the request gone (what the executor asks before
each stage) and, while the request waits in an interruptible section (for admission),
throws ``ClientGone`` there; bytes from the client, or a hang-up after the watch ended,
change nothing."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import gevent
import gevent.event
import gevent.socket
import pytest

from orchestration.web.client_gone import ClientGone, watch_hang_up

HOLD_S = 5.0  # how long a watched greenlet would wait if nothing stopped it


@pytest.fixture
def pair() -> Iterator[tuple[gevent.socket.socket, gevent.socket.socket]]:
    server, client = gevent.socket.socketpair()
    yield server, client
    server.close()
    client.close()


def wait_for_admission(server: gevent.socket.socket, admitted: gevent.event.Event) -> str:
    """A request waiting for a slot (``admitted``, or HOLD_S) while its client is watched."""
    try:
        with watch_hang_up({"gunicorn.socket": server}) as watch:
            watch.interruptible(lambda: admitted.wait(HOLD_S))
    except ClientGone:
        return "gone"
    return "admitted" if admitted.is_set() else "waited the whole hold"


def run_a_stage(server: gevent.socket.socket, answered: gevent.event.Event) -> tuple[str, bool]:
    """A running request: its stage's call (``answered``) is never interrupted; then whether
    the next stage would start."""
    with watch_hang_up({"gunicorn.socket": server}) as watch:
        answered.wait(HOLD_S)
        return ("answered" if answered.is_set() else "waited the whole hold"), watch.is_gone()


def test_a_client_that_closes_while_waiting_for_admission_stops_the_wait(pair) -> None:
    server, client = pair
    request = gevent.spawn(wait_for_admission, server, gevent.event.Event())
    gevent.sleep(0)  # it is waiting now
    client.close()
    assert request.get(timeout=HOLD_S / 2) == "gone"


def test_a_client_that_resets_while_waiting_for_admission_stops_the_wait() -> None:
    listener = gevent.socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    client = gevent.socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        request = gevent.spawn(wait_for_admission, server, gevent.event.Event())
        gevent.sleep(0)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # RST, not FIN
        assert request.get(timeout=HOLD_S / 2) == "gone"
    finally:
        server.close()
        listener.close()


def test_a_client_gone_before_the_wait_never_waits(pair) -> None:
    server, client = pair
    client.close()

    def gone_first() -> str:
        with watch_hang_up({"gunicorn.socket": server}) as watch:
            gevent.sleep(0.05)  # the hang-up is seen while the request does other work
            try:
                watch.interruptible(lambda: gevent.sleep(HOLD_S))
            except ClientGone:
                return "gone"
        return "waited"

    assert gevent.spawn(gone_first).get(timeout=HOLD_S / 2) == "gone"


def test_a_hang_up_while_a_stage_runs_lets_its_call_finish_and_marks_the_request_gone(pair) -> None:
    server, client = pair
    answered = gevent.event.Event()
    request = gevent.spawn(run_a_stage, server, answered)
    gevent.sleep(0)
    client.close()
    gevent.sleep(0.05)
    assert not request.dead, "the stage's call was not interrupted"
    answered.set()
    assert request.get(timeout=HOLD_S / 2) == ("answered", True)


def test_bytes_from_the_client_are_not_a_hang_up(pair) -> None:
    server, client = pair
    answered = gevent.event.Event()
    request = gevent.spawn(run_a_stage, server, answered)
    gevent.sleep(0)
    client.sendall(b"GET /next HTTP/1.1\r\n")  # a pipelined next request
    gevent.sleep(0.05)
    client.close()  # the watch ended at the bytes: this hang-up is not seen mid-request
    gevent.sleep(0.05)
    answered.set()
    assert request.get(timeout=HOLD_S / 2) == ("answered", False)
    assert server.recv(64) == b"GET /next HTTP/1.1\r\n"  # peeked, never consumed


def test_a_hang_up_after_the_request_ended_throws_nothing(pair) -> None:
    server, client = pair
    admitted = gevent.event.Event()
    admitted.set()

    def request_then_more_work() -> str:
        answer = wait_for_admission(server, admitted)
        gevent.sleep(0.1)  # a watch left armed would throw ClientGone here
        return answer

    greenlet = gevent.spawn(request_then_more_work)
    gevent.sleep(0)
    client.close()
    assert greenlet.get(timeout=HOLD_S / 2) == "admitted"


def test_outside_gunicorns_gevent_worker_nothing_is_watched() -> None:
    plain_server, plain_client = socket.socketpair()
    try:
        with watch_hang_up({"gunicorn.socket": plain_server}) as watch:  # not a gevent socket
            plain_client.close()
            watch.interruptible(lambda: gevent.sleep(0.05))
        assert not watch.is_gone()
        with watch_hang_up({}) as watch:  # Django's test client, runserver
            assert not watch.is_gone()
    finally:
        plain_server.close()
