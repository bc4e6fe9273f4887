"""Stop serving an aggregate request whose client has hung up.

A client that closes its connection mid-request (a load balancer's timeout, an app that
gave up and retried, a user who left) used to leave its request running to the end: its
admission slot, its downstream calls and its CPU, taken from the requests whose clients
still wait. While an aggregate request is served, its connection is watched: when the
socket reads end-of-file (the peer's FIN) or is reset, ``ClientGone`` is thrown into the
request's greenlet at the wait it is in, as ``gevent.Timeout`` would be. Every wait of the
request path gives back what it holds when its greenlet is killed (admission slots, pooled
connections, breaker permits, bulkhead slots, fill locks, the lead of a shared Redis trip),
and the calls of a stage still running are interrupted with the stage. The view answers
499 (nginx's "client closed request"): what the access line and the metrics record.

Only under gunicorn's gevent worker (the WSGI environ's ``gunicorn.socket`` a gevent
socket). Bytes from the client while its request runs (a pipelined next request) are not a
hang-up; the watch then ends, as it cannot see past them. A client that shuts down only its
sending side reads the same as one that left, and is treated as gone (so is it by nginx).

Cost: one libev io watcher started and stopped per request: no greenlet, and no system
call while the client waits (the socket is peeked only once it turns readable).
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any

from gevent import get_hub
from gevent.socket import socket as GeventSocket
from greenlet import getcurrent

from orchestration.errors import BadRequest, GatewayError

CLIENT_CLOSED = 499  # nginx's status for a request whose client closed the connection first
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
_READ = 1  # libev's EV_READ


class ClientGone(BaseException):
    """Thrown into a request's greenlet when its client hangs up. A ``BaseException``, like
    ``gevent.Timeout``: no ``except Exception`` on the way turns it into an answer."""


def client_closed_error() -> GatewayError:
    """What the request's answer says (a client that only half-closed may still read it)."""
    return BadRequest("The client closed its connection before the answer was ready", status=CLIENT_CLOSED)


class _Watch:
    __slots__ = ("_greenlet", "_raw", "_watcher")

    def __init__(self, sock: GeventSocket) -> None:
        self._raw = sock._sock  # the OS socket: a peek from the hub must never wait
        self._greenlet = getcurrent()
        self._watcher = get_hub().loop.io(sock.fileno(), _READ)
        self._watcher.start(self._readable)

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
            self._greenlet.throw(ClientGone())

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._watcher.close()


class _NoWatch:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        return None


_NO_WATCH = _NoWatch()


def hang_up_stops(meta: dict[str, Any]) -> _Watch | _NoWatch:
    """A context in which the request of this WSGI environ is stopped by ``ClientGone`` if its
    client hangs up; outside gunicorn's gevent worker it watches nothing."""
    sock = meta.get("gunicorn.socket")
    if not isinstance(sock, GeventSocket):
        return _NO_WATCH
    return _Watch(sock)
