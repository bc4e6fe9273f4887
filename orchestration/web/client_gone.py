"""Stop serving an aggregate request whose client has hung up.

A client that closes its connection mid-request (a load balancer's timeout, an app that
gave up and retried, a user who left) used to leave its request running to the end: its
admission slot, its downstream calls and its CPU, taken from the requests whose clients
still wait. While an aggregate request is served (after its body is received), its
connection is watched; when the socket reads end-of-file (the peer's FIN) or is reset:

- a request still waiting for admission stops there at once (``ClientGone`` is thrown at
  that wait, which gives back its place in the queue), calling nothing;
- a running request starts no further stage (the executor asks ``RequestContext.client_gone``
  before each one and raises ``Abandoned``); the calls of the stage under way finish, so
  their connections go back to the pool. Interrupting them too (``ClientGone`` thrown
  wherever the request waited, the first version) made the p99 at 100 clients 10 to 35 ms
  worse in the benchmark, whose clients all leave at once at each point's start: the next
  requests had to open the connections the interrupted calls lost (bench/README.md, round 14).

The view answers 499 (nginx's "client closed request"), which the access line and the
metrics record.

Only under gunicorn's gevent worker (the WSGI environ's ``gunicorn.socket`` a gevent
socket). Bytes from the client while its request runs (a pipelined next request) are not a
hang-up; the watch then ends, as it cannot see past them. A client that shuts down only its
sending side reads the same as one that left, and is treated as gone (so is it by nginx).

Cost: one libev io watcher started and stopped per request: no greenlet, and no system
call while the client waits (the socket is peeked only once it turns readable).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, TypeVar

from gevent import get_hub
from gevent.socket import socket as GeventSocket
from greenlet import getcurrent

from orchestration.errors import Abandoned, BadRequest, GatewayError

CLIENT_CLOSED = 499  # nginx's status for a request whose client closed the connection first
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
_READ = 1  # libev's EV_READ

T = TypeVar("T")


class ClientGone(Abandoned):
    """Thrown into a request's greenlet waiting for admission when its client hangs up."""


def client_closed_error() -> GatewayError:
    """What the request's answer says (a client that only half-closed may still read it)."""
    return BadRequest("The client closed its connection before the answer was ready", status=CLIENT_CLOSED)


class Watch:
    """The client connection of one request, watched for a hang-up (a context manager)."""

    __slots__ = ("_gone", "_greenlet", "_raw", "_waiting", "_watcher")

    def __init__(self, sock: GeventSocket) -> None:
        self._gone = False
        self._raw = sock._sock  # the OS socket: a peek from the hub must never wait
        self._greenlet = getcurrent()
        self._waiting = False
        self._watcher = get_hub().loop.io(sock.fileno(), _READ)
        self._watcher.start(self._readable)

    def is_gone(self) -> bool:
        return self._gone

    def interruptible(self, wait: Callable[[], T]) -> T:
        """``wait()``, a wait that holds nothing but a place in a queue: a hang-up during it
        throws ``ClientGone`` there (or before it, when the client left already)."""
        if self._gone:
            raise ClientGone()
        self._waiting = True
        try:
            return wait()
        finally:
            self._waiting = False

    def _readable(self) -> None:
        """In the hub, when the client's socket turns readable."""
        try:
            data = self._raw.recv(1, _PEEK)
        except BlockingIOError:
            return  # woken for nothing: keep watching
        except OSError:  # reset by the peer
            data = b""
        self._watcher.stop()
        if not data:
            self._gone = True
            if self._waiting:
                self._greenlet.throw(ClientGone())

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._watcher.close()


class NoWatch:
    """Outside gunicorn's gevent worker: nothing to watch, never gone."""

    __slots__ = ()

    def is_gone(self) -> bool:
        return False

    def interruptible(self, wait: Callable[[], T]) -> T:
        return wait()

    def __enter__(self) -> NoWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_NO_WATCH = NoWatch()


def watch_hang_up(meta: dict[str, Any]) -> Watch | NoWatch:
    """The watch of the client connection of this WSGI environ (see the module docstring)."""
    sock = meta.get("gunicorn.socket")
    if not isinstance(sock, GeventSocket):
        return _NO_WATCH
    return Watch(sock)
