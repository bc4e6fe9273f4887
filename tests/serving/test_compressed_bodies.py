"""A downstream's gzip body is bounded by GATEWAY_MAX_DOWNSTREAM_BODY_BYTES once inflated:
a gzip bomb fails its call like an oversized body, through the view, against a real
loopback server."""

from __future__ import annotations

import gzip
import json
import threading
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client

from gateway_project import wiring
from registry.services import config_import

BOMB = gzip.compress(b"\0" * (10 * 1024 * 1024), 9)  # 10 MiB of zeros in about 10 KiB
CAP = 1024 * 1024  # GATEWAY_MAX_DOWNSTREAM_BODY_BYTES in these tests
SMALL = gzip.compress(json.dumps({"items": ["a", "b"]}).encode())


class Downstream:
    """/bomb answers the gzip bomb, /small a small gzip JSON body, /plain plain JSON."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                outer.hits[self.path] += 1
                encoded = {"/bomb": BOMB, "/small": SMALL}.get(self.path)
                payload = encoded if encoded is not None else json.dumps({"items": ["plain"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if encoded is not None:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def _call(call_id: str, path: str, *, required: bool, stage: int = 1) -> dict[str, Any]:
    call: dict[str, Any] = {"id": call_id, "service": "recs", "stage": stage, "method": "GET", "path": path}
    call |= {"required": required, "timeout_ms": 2000}
    return call if required else call | {"fallback": {"items": []}}


def document(base_url: str) -> dict[str, Any]:
    retry = {"max_retries": 0, "backoff": "none", "base_ms": 0, "retry_on": ["5xx"]}
    endpoints = [
        ("optional-bomb", [_call("plain", "/plain", required=True), _call("extra", "/bomb", required=False)]),
        ("required-bomb", [_call("extra", "/bomb", required=True)]),
        ("small-gzip", [_call("extra", "/small", required=True)]),
    ]
    return {
        "version": 1,
        "layer": {"name": "Compressed bodies", "base_path": "/v1/gz", "auth": {"type": "none"}},
        "services": {"recs": {"base_url": base_url, "timeout_ms": 3000, "retry": retry}},
        "endpoints": [
            {
                "name": name,
                "method": "GET",
                "path": f"/{name}",
                "timeout_ms": 5000,
                "calls": calls,
                "response": {call["id"]: f"{{{{ {call['id']}.items }}}}" for call in calls},
            }
            for name, calls in endpoints
        ],
    }


@pytest.fixture
def served(db: None, settings: Any) -> Iterator[Downstream]:
    settings.GATEWAY = {**settings.GATEWAY, "MAX_DOWNSTREAM_BODY_BYTES": CAP}
    downstream = Downstream()
    config_import(document=document(downstream.url))
    wiring.runtime_holder().invalidate()
    wiring.runtime_holder().current().pool.breaker("recs").reset()  # shared through Redis with other tests
    yield downstream
    wiring.runtime_holder().current().pool.breaker("recs").reset()
    wiring.runtime_holder().invalidate()
    downstream.server.shutdown()
    downstream.server.server_close()


def test_an_optional_call_answering_a_gzip_bomb_falls_back(served: Downstream) -> None:
    response = Client().get("/v1/gz/optional-bomb")

    assert response.status_code == 200
    assert response.json() == {"plain": ["plain"], "extra": [], "partialData": True, "failedServices": ["recs"]}
    assert served.hits["/bomb"] == 1


def test_a_required_call_answering_a_gzip_bomb_is_502_without_inflating_it_all(served: Downstream) -> None:
    client = Client()
    tracemalloc.start()
    try:
        response = client.get("/v1/gz/required-bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["code"], error["failedServices"], error["requestId"]) == (
        "DOWNSTREAM_FAILURE",
        ["recs"],
        response["X-Request-ID"],
    )
    assert served.hits["/bomb"] == 1  # a bad body is not retried (retry_on: 5xx)
    assert peak < 4 * CAP  # the cap and a piece at a time, never the 10 MiB the body inflates to


def test_a_small_gzip_body_is_inflated_and_served(served: Downstream) -> None:
    response = Client().get("/v1/gz/small-gzip")

    assert response.status_code == 200
    assert response.json() == {"extra": ["a", "b"]}
