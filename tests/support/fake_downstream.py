"""Fake downstream services over real HTTP on loopback, and their fixtures.

``fake_downstream(routes)`` starts an HTTP server on a loopback port that answers
each path from ``routes``, counts hits per path and records request headers;
``module_fake_downstream`` is the same for a whole test module. Conftests import
the fixtures from here (tests/e2e, tests/console).
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

# A route answers (status, JSON body) or (status, JSON body, headers); a callable gets the handler.
Answer = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
Route = Answer | Callable[["_Handler"], Answer]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FakeDownstream:
    """A running fake service; ``routes`` may be changed while it runs."""

    routes: dict[str, Route]
    hits: Counter[str] = field(default_factory=Counter)
    headers: dict[str, list[dict[str, str]]] = field(default_factory=lambda: defaultdict(list))
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, handler: _Handler) -> Answer:
        path = urlsplit(handler.path).path
        route = self.routes.get(path, self.routes.get("*", (404, {"error": "no route"})))
        return route(handler) if callable(route) else route


class _Handler(BaseHTTPRequestHandler):
    fake: FakeDownstream
    protocol_version = "HTTP/1.1"
    # The head and the body go out in two writes; with Nagle on, the body waited for the
    # client's delayed ACK of the head (~40 ms on a kept-alive connection): a "5 ms" fake
    # answered in 40-55 ms.
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        self.fake.hits[path] += 1
        self.fake.headers[path].append({k.lower(): v for k, v in self.headers.items()})
        answer = self.fake.answer(self)
        status, body = answer[0], answer[1]
        extra: Mapping[str, str] = answer[2] if len(answer) > 2 else {}  # type: ignore[misc]
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops SYNs when two gateway workers open connections
    # in a burst; the retransmit a second later reads as a downstream timeout.
    request_queue_size = 128


def start_fake_downstream(routes: dict[str, Route]) -> FakeDownstream:
    """Start a ``FakeDownstream`` outside any fixture; stop it with ``stop_fake_downstream``."""
    fake = FakeDownstream(dict(routes))
    handler = type("Handler", (_Handler,), {"fake": fake})
    fake.server = _Server(("127.0.0.1", 0), handler)
    fake.server.daemon_threads = True
    threading.Thread(target=fake.server.serve_forever, daemon=True).start()
    return fake


def stop_fake_downstream(fake: FakeDownstream) -> None:
    if fake.server is not None:
        fake.server.shutdown()
        fake.server.server_close()


def _fakes_until_teardown() -> Iterator[Callable[[dict[str, Route]], FakeDownstream]]:
    started: list[FakeDownstream] = []

    def start(routes: dict[str, Route]) -> FakeDownstream:
        started.append(start_fake_downstream(routes))
        return started[-1]

    yield start
    for fake in started:
        stop_fake_downstream(fake)


@pytest.fixture
def fake_downstream() -> Iterator[Callable[[dict[str, Route]], FakeDownstream]]:
    """Factory: ``fake_downstream(routes)`` starts a fake service, stopped after the test."""
    yield from _fakes_until_teardown()


@pytest.fixture(scope="module")
def module_fake_downstream() -> Iterator[Callable[[dict[str, Route]], FakeDownstream]]:
    """``fake_downstream`` that lives as long as the test module."""
    yield from _fakes_until_teardown()
