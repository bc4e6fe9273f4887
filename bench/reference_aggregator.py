#!/usr/bin/env python
"""A hand-written aiohttp aggregator for the checkout summary: the benchmark's yardstick.

It does what the gateway does for ``POST /v1/checkout/summary`` with nothing
generic in the way: cart, then inventory + pricing + shipping in parallel, then
tax; the same request bodies, per-call timeouts, forwarded Authorization,
X-Request-ID and traceparent headers; the same response assembly as
examples/checkout.yaml (shipping optional with a null fallback and
``partialData``/``failedServices``). The gateway's overhead is read against it.

    python bench/reference_aggregator.py --port 8100 --workers 2 \\
        --upstream cart=http://127.0.0.1:9101 --upstream inventory=http://127.0.0.1:9102 ...

Two worker processes accept on one listening socket, as gunicorn's workers do.
With ``--jwt-secret-env NAME`` it verifies the client's HS256 token like the
gateway's JWT auth. No retries, breakers or rate limits: the benchmark's
downstreams never fail. It lives only under bench/ and is not part of the product.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import sys
import uuid
from typing import Any
from urllib.parse import quote

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

SERVICES = ("cart", "inventory", "pricing", "shipping", "tax")
TIMEOUT_S = {"cart": 0.2, "inventory": 0.4, "pricing": 0.2, "shipping": 0.5, "tax": 0.3}
DEADLINE_S = 2.0
Json = Any


class CallFailed(Exception):
    def __init__(self, service: str, *, timed_out: bool = False) -> None:
        super().__init__(service)
        self.service, self.timed_out = service, timed_out


def _dumps(value: Json) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _envelope(status: int, code: str, message: str, request_id: str, failed: list[str]) -> web.Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "failedServices": failed,
            "partialData": False,
            "requestId": request_id,
        },
        "data": {},
    }
    return web.Response(
        text=_dumps(body), status=status, content_type="application/json", headers={"X-Request-ID": request_id}
    )


class Aggregator:
    def __init__(self, upstream: dict[str, str], jwt_secret: str | None) -> None:
        self.upstream, self.jwt_secret = upstream, jwt_secret
        self.session: ClientSession | None = None

    async def start(self, _app: web.Application) -> None:
        # One pool for all services, at most 100 connections per service: the bulkhead of checkout.yaml.
        self.session = ClientSession(connector=TCPConnector(limit=0, limit_per_host=100), json_serialize=_dumps)

    async def stop(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def call(self, service: str, method: str, path: str, headers: dict[str, str], body: Json = None) -> Json:
        assert self.session is not None
        try:
            async with self.session.request(
                method,
                self.upstream[service] + path,
                json=body,
                headers=headers,
                timeout=ClientTimeout(total=TIMEOUT_S[service]),
            ) as response:
                if response.status >= 400:
                    raise CallFailed(service)
                return await response.json(loads=json.loads, content_type=None)
        except TimeoutError:
            raise CallFailed(service, timed_out=True) from None
        except (ClientError, ValueError):
            raise CallFailed(service) from None

    def authenticate(self, request: web.Request) -> bool:
        if self.jwt_secret is None:
            return True
        import jwt

        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        try:
            jwt.decode(token, self.jwt_secret, algorithms=["HS256"], options={"require": ["exp"]})
        except jwt.InvalidTokenError:
            return False
        return True

    async def checkout_summary(self, request: web.Request) -> web.Response:
        request_id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        if not self.authenticate(request):
            return _envelope(401, "UNAUTHENTICATED", "Missing or invalid credentials", request_id, [])
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _envelope(400, "BAD_REQUEST", "Request body is not valid JSON", request_id, [])
        headers = {"X-Request-ID": request_id, "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"}
        try:
            async with asyncio.timeout(DEADLINE_S):
                result = await self.run(body if isinstance(body, dict) else {}, headers, request)
        except TimeoutError:
            return _envelope(504, "GATEWAY_TIMEOUT", "The request took too long", request_id, [])
        except CallFailed as failure:
            status, code = (504, "GATEWAY_TIMEOUT") if failure.timed_out else (502, "DOWNSTREAM_FAILURE")
            return _envelope(status, code, "One or more services unavailable", request_id, [failure.service])
        return web.Response(text=_dumps(result), content_type="application/json", headers={"X-Request-ID": request_id})

    async def run(self, body: dict[str, Json], headers: dict[str, str], request: web.Request) -> dict[str, Json]:
        cart_headers = dict(headers)
        if "Authorization" in request.headers:
            cart_headers["Authorization"] = request.headers["Authorization"]  # bearer_forward
        cart = await self.call("cart", "GET", "/carts/" + quote(str(body.get("cartId")), safe=""), cart_headers)

        items = [{"sku": item.get("sku"), "quantity": item.get("quantity")} for item in cart.get("items") or []]
        inventory_task = asyncio.ensure_future(
            self.call("inventory", "POST", "/check-availability", headers, {"items": items})
        )
        pricing_task = asyncio.ensure_future(
            self.call("pricing", "POST", "/calculate", headers, {"items": items, "currency": cart.get("currency")})
        )
        shipping_task = asyncio.ensure_future(self.call("shipping", "POST", "/estimate", headers, {"items": items}))
        stage2 = (inventory_task, pricing_task, shipping_task)
        try:
            inventory, pricing = await asyncio.gather(inventory_task, pricing_task)
        except CallFailed:
            for task in stage2:
                task.cancel()
            raise
        failed: list[str] = []
        try:
            shipping = await shipping_task
        except CallFailed:
            shipping, failed = None, ["shipping"]

        tax_body = {"subtotal": pricing.get("subtotal"), "currency": pricing.get("currency")}
        tax = await self.call("tax", "POST", "/calculate", headers, tax_body)
        result: dict[str, Json] = {
            "cart": {"items": cart.get("items"), "itemCount": len(cart.get("items") or [])},
            "pricing": {"subtotal": pricing.get("subtotal"), "currency": pricing.get("currency")},
            "shipping": None
            if shipping is None
            else {"options": shipping.get("options"), "estimated": shipping.get("estimated")},
            "tax": {"amount": tax.get("amount"), "rate": tax.get("rate")},
            "total": pricing.get("subtotal", 0) + tax.get("amount", 0),
            "availabilityConfirmed": inventory.get("available"),
        }
        if failed:
            result.update(partialData=True, failedServices=failed)
        return result


def build_app(upstream: dict[str, str], jwt_secret: str | None) -> web.Application:
    aggregator = Aggregator(upstream, jwt_secret)
    app = web.Application()
    app.on_startup.append(aggregator.start)
    app.on_cleanup.append(aggregator.stop)
    app.router.add_post("/v1/checkout/summary", aggregator.checkout_summary)
    app.router.add_get("/healthz", lambda _request: _healthz())
    return app


async def _healthz() -> web.Response:
    return web.json_response({"status": "ok"})


def _worker(sock: socket.socket, upstream: dict[str, str], jwt_secret: str | None) -> None:
    web.run_app(build_app(upstream, jwt_secret), sock=sock, access_log=None, print=None, handle_signals=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Hand-written aiohttp checkout aggregator (benchmark reference).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--upstream", action="append", default=[], help="service=base_url, once per service")
    parser.add_argument("--jwt-secret-env", default=None, help="verify HS256 client tokens with this env var's secret")
    args = parser.parse_args(argv)
    upstream = dict(item.split("=", 1) for item in args.upstream)
    missing = [name for name in SERVICES if name not in upstream]
    if missing:
        parser.error(f"missing --upstream for: {', '.join(missing)}")
    jwt_secret = os.environ[args.jwt_secret_env] if args.jwt_secret_env else None

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.setblocking(False)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_worker, args=(sock, upstream, jwt_secret)) for _ in range(args.workers)]
    for worker in workers:
        worker.start()
    sock.close()

    # The parent only waits: for SIGTERM/SIGINT, or for a worker to die (then it stops the rest).
    waited = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    while all(worker.is_alive() for worker in workers):
        received = signal.sigtimedwait(waited, 1.0)
        if received is not None and received.si_signo != signal.SIGCHLD:
            break
    for worker in workers:
        if worker.is_alive():
            worker.terminate()  # SIGTERM: aiohttp shuts down gracefully
    for worker in workers:
        worker.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
