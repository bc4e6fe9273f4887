"""A real RFC 7662 introspection endpoint on loopback, for tests: it knows some
tokens, counts its hits, checks the gateway's HTTP Basic client credentials, and
can be switched to failing (500) or closed."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

CLIENT_ID, CLIENT_SECRET = "gateway-client", "introspection-secret-123"


@dataclass
class Introspector:
    url: str
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> active answer
    hits: int = 0
    failing: bool = False
    bad_credentials: int = 0

    def active(self, token: str, sub: str, *, ttl_s: float = 3600, **extra: Any) -> None:
        self.tokens[token] = {"active": True, "sub": sub, "exp": int(time.time() + ttl_s), **extra}


@contextmanager
def introspection_server() -> Iterator[Introspector]:
    state: Introspector

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            state.hits += 1
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0)).decode()
            expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            if self.headers.get("Authorization") != expected:
                state.bad_credentials += 1
                self._answer(401, {"error": "invalid_client"})
            elif state.failing:
                self._answer(500, {"error": "down"})
            else:
                token = parse_qs(body).get("token", [""])[0]
                self._answer(200, state.tokens.get(token, {"active": False}))

        def _answer(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state = Introspector(url=f"http://127.0.0.1:{server.server_address[1]}/introspect")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
