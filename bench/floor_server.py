"""The floor of our serving stack: the checkout summary as a bare WSGI app (bench/run.py's "floor").

gunicorn's gevent workers (the product card's server) running the template's
checkout with nothing generic in the way: no framework, no policies (breaker,
bulkhead, retries, rate limits, metrics, tracing, access line). What it does
is what ``bench/reference_aggregator.py`` does: HS256 JWT verified, the same
five calls with the same bodies, forwarded Authorization / X-Request-ID /
traceparent, per-call timeouts, the same assembly. Downstream HTTP/1.1 goes
over pooled gevent sockets, request heads written by hand, answers parsed in
C by httptools; JSON in C by orjson. The distance between this row and the
gateway's in bench/run.py's table is the cost of the gateway's own layers.

    FLOOR_UPSTREAM='{"cart": "http://127.0.0.1:9101", ...}' GATEWAY_JWT_SECRET=... \\
        gunicorn -k gevent -w 2 --chdir bench floor_server:app

It lives only under bench/ and is not part of the product.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

import gevent
import httptools
import jwt
import orjson

TIMEOUT_S = {"cart": 0.2, "inventory": 0.4, "pricing": 0.2, "shipping": 0.5, "tax": 0.3}
POOL_SIZE = 100  # idle connections kept per service (the checkout's bulkhead)


class CallFailed(Exception):
    def __init__(self, service: str, *, timed_out: bool = False) -> None:
        super().__init__(service)
        self.service, self.timed_out = service, timed_out


class _Answer:
    """httptools callbacks: the body pieces and whether the message is complete."""

    __slots__ = ("body", "done")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.done = False

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        self.done = True


class Service:
    """One downstream: its address, a pre-built head prefix, and a pool of idle sockets."""

    def __init__(self, name: str, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.name = name
        self.address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.timeout_s = TIMEOUT_S[name]
        self._host_line = b"Host: %s\r\nUser-Agent: floor\r\nAccept: application/json\r\n" % parts.netloc.encode()
        self._idle: list[socket.socket] = []

    def call(self, method: bytes, path: str, headers: bytes, body: Any = None) -> Any:
        payload = b"" if body is None else orjson.dumps(body)
        head = b"%s %s HTTP/1.1\r\n%s%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (
            method, path.encode(), self._host_line, headers, len(payload),
        )  # fmt: skip
        sock = self._idle.pop() if self._idle else None
        try:
            with gevent.Timeout(self.timeout_s):
                if sock is None:
                    sock = socket.create_connection(self.address)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.sendall(head + payload)
                answer = _Answer()
                parser = httptools.HttpResponseParser(answer)
                while not answer.done:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise CallFailed(self.name)
                    parser.feed_data(chunk)
        except gevent.Timeout:
            _close(sock)
            raise CallFailed(self.name, timed_out=True) from None
        except (OSError, httptools.HttpParserError):
            _close(sock)
            raise CallFailed(self.name) from None
        if parser.should_keep_alive() and len(self._idle) < POOL_SIZE:
            self._idle.append(sock)
        else:
            _close(sock)
        if parser.get_status_code() >= 400:
            raise CallFailed(self.name)
        try:
            return orjson.loads(b"".join(answer.body))
        except orjson.JSONDecodeError:
            raise CallFailed(self.name) from None


def _close(sock: socket.socket | None) -> None:
    if sock is not None:
        sock.close()


_SERVICES = {name: Service(name, url) for name, url in json.loads(os.environ.get("FLOOR_UPSTREAM", "{}")).items()}
_JWT_SECRET = os.environ.get(os.environ.get("FLOOR_JWT_SECRET_ENV", "GATEWAY_JWT_SECRET"), "")

StartResponse = Callable[..., Any]


def _answer(start_response: StartResponse, status: str, document: Any, request_id: str) -> list[bytes]:
    body = orjson.dumps(document)
    start_response(
        status,
        [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("X-Request-ID", request_id)],
    )
    return [body]


def _error(start_response: StartResponse, status: str, code: str, request_id: str, failed: list[str]) -> list[bytes]:
    envelope = {
        "error": {
            "code": code,
            "message": code,
            "failedServices": failed,
            "partialData": False,
            "requestId": request_id,
        },
        "data": {},
    }
    return _answer(start_response, status, envelope, request_id)


def _authenticated(environ: dict[str, Any]) -> bool:
    if not _JWT_SECRET:
        return True
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    try:
        jwt.decode(token, _JWT_SECRET, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.InvalidTokenError:
        return False
    return True


def checkout(body: dict[str, Any], headers: bytes, authorization: str) -> dict[str, Any]:
    s = _SERVICES
    cart_headers = headers + (b"Authorization: %s\r\n" % authorization.encode() if authorization else b"")
    cart = s["cart"].call(b"GET", "/carts/" + quote(str(body.get("cartId")), safe=""), cart_headers)
    items = [{"sku": item.get("sku"), "quantity": item.get("quantity")} for item in cart.get("items") or []]
    currency = cart.get("currency")
    stage2 = [
        gevent.spawn(s["inventory"].call, b"POST", "/check-availability", headers, {"items": items}),
        gevent.spawn(s["pricing"].call, b"POST", "/calculate", headers, {"items": items, "currency": currency}),
        gevent.spawn(s["shipping"].call, b"POST", "/estimate", headers, {"items": items}),
    ]  # fmt: skip
    gevent.joinall(stage2[:2], raise_error=False)
    for required in stage2[:2]:
        if not required.successful():
            gevent.killall(stage2)
            raise required.exception  # type: ignore[misc]
    inventory, pricing = stage2[0].value, stage2[1].value
    stage2[2].join()
    shipping, failed = (stage2[2].value, []) if stage2[2].successful() else (None, ["shipping"])
    tax = s["tax"].call(
        b"POST", "/calculate", headers, {"subtotal": pricing.get("subtotal"), "currency": pricing.get("currency")}
    )
    result: dict[str, Any] = {
        "cart": {"items": cart.get("items"), "itemCount": len(cart.get("items") or [])},
        "pricing": {"subtotal": pricing.get("subtotal"), "currency": pricing.get("currency")},
        "shipping": shipping and {"options": shipping.get("options"), "estimated": shipping.get("estimated")},
        "tax": {"amount": tax.get("amount"), "rate": tax.get("rate")},
        "total": pricing.get("subtotal", 0) + tax.get("amount", 0),
        "availabilityConfirmed": inventory.get("available"),
    }  # fmt: skip
    if failed:
        result.update(partialData=True, failedServices=failed)
    return result


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if path == "/healthz":
        return _answer(start_response, "200 OK", {"status": "ok"}, "-")
    request_id = environ.get("HTTP_X_REQUEST_ID") or uuid.uuid4().hex
    if path != "/v1/checkout/summary" or environ.get("REQUEST_METHOD") != "POST":
        return _error(start_response, "404 Not Found", "NOT_FOUND", request_id, [])
    if not _authenticated(environ):
        return _error(start_response, "401 Unauthorized", "UNAUTHENTICATED", request_id, [])
    try:
        body = orjson.loads(environ["wsgi.input"].read())
    except orjson.JSONDecodeError:
        return _error(start_response, "400 Bad Request", "BAD_REQUEST", request_id, [])
    traceparent = f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"
    headers = b"X-Request-ID: %s\r\ntraceparent: %s\r\n" % (request_id.encode(), traceparent.encode())
    try:
        result = checkout(body if isinstance(body, dict) else {}, headers, environ.get("HTTP_AUTHORIZATION", ""))
    except CallFailed as failure:
        status, code = (
            ("504 Gateway Timeout", "GATEWAY_TIMEOUT")
            if failure.timed_out
            else ("502 Bad Gateway", "DOWNSTREAM_FAILURE")
        )
        return _error(start_response, status, code, request_id, [failure.service])
    return _answer(start_response, "200 OK", result, request_id)
