#!/usr/bin/env python
"""Demo downstream simulator: the Checkout BFF's nine services (and the catalog BFF's
GraphQL product service) on loopback.

Each service is a real HTTP server on its own port that answers like the
template's service would, after that service's declared average latency, so the
gateway's checkout summary assembles to the mission's numbers exactly
(3 items, subtotal 14997 USD, tax 1237 at 8.25 %, total 16234).

    python examples/simulator.py                      # all ten services
    python examples/simulator.py --without shipping   # the degraded demo
    python examples/simulator.py --only cart,tax --latency-scale 0

Every request is logged with the ``X-Request-ID`` and ``traceparent`` it carried,
which is how the demo shows one request id across the gateway and every service.
Tests import :func:`start_in_thread` to run it on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aiohttp import web
from graphql import build_schema, graphql_sync

log = logging.getLogger("simulator")

Json = Any
Reply = tuple[int, Json]
Handler = Callable[[web.Request, Json], Reply]

# ---------------------------------------------------------------------------
# The demo's data. Prices are integer cents, as the services would send them.
# ---------------------------------------------------------------------------

CATALOG: dict[str, dict[str, Any]] = {
    "SKU-HEADPHONES": {"name": "Wireless Headphones", "price": 7999, "stock": 12},
    "SKU-CHARGER": {"name": "USB-C Charger 65W", "price": 3999, "stock": 40},
    "SKU-CASE": {"name": "Protective Case", "price": 2999, "stock": 3},
}
CARTS: dict[str, dict[str, Any]] = {
    "c-1001": {"userId": "42", "items": [("SKU-HEADPHONES", 1), ("SKU-CHARGER", 1), ("SKU-CASE", 1)]},
    "c-empty": {"userId": "42", "items": []},
}
USERS: dict[str, dict[str, Any]] = {
    "42": {"name": "Ada Lovelace", "email": "ada@example.com", "memberSince": "2021-03-14"},
    "7": {"name": "Grace Hopper", "email": "grace@example.com", "memberSince": "2023-09-01"},
}
TAX_RATE = Decimal("0.0825")
SHIPPING_OPTIONS = [
    {"id": "standard", "label": "Standard (5-7 business days)", "amount": 599, "currency": "USD"},
    {"id": "express", "label": "Express (1-2 business days)", "amount": 1499, "currency": "USD"},
]


def _line(sku: str, quantity: int) -> dict[str, Any]:
    item = CATALOG[sku]
    return {"sku": sku, "name": item["name"], "quantity": quantity, "unitPrice": item["price"]}


def _items(body: Json) -> list[dict[str, Any]] | None:
    """The ``items`` list of a request body, or None when it is not one."""
    items = body.get("items") if isinstance(body, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("sku"), str) for i in items):
        return None
    return items


def _quantity(item: Mapping[str, Any]) -> int:
    quantity = item.get("quantity", 1)
    return quantity if isinstance(quantity, int) and quantity > 0 else 1


# ---------------------------------------------------------------------------
# Handlers: (request, parsed JSON body or None) -> (status, JSON body).
# ---------------------------------------------------------------------------


def get_cart(request: web.Request, _body: Json) -> Reply:
    cart_id = request.match_info["id"]
    cart = CARTS.get(cart_id)
    if cart is None:
        return 404, {"error": "cart not found", "cartId": cart_id}
    items = [_line(sku, quantity) for sku, quantity in cart["items"]]
    return 200, {"id": cart_id, "userId": cart["userId"], "currency": "USD", "items": items}


def get_product(request: web.Request, _body: Json) -> Reply:
    sku = request.match_info["sku"]
    product = CATALOG.get(sku)
    if product is None:
        return 404, {"error": "product not found", "sku": sku}
    return 200, {"sku": sku, "name": product["name"], "unitPrice": product["price"], "stock": product["stock"]}


def check_availability(_request: web.Request, body: Json) -> Reply:
    items = _items(body)
    if items is None:
        return 422, {"error": "body must be {items: [{sku, quantity}]}"}
    lines = []
    for item in items:
        in_stock = CATALOG.get(item["sku"], {}).get("stock", 0)
        lines.append({"sku": item["sku"], "requested": _quantity(item), "inStock": in_stock})
        lines[-1]["available"] = in_stock >= lines[-1]["requested"]
    return 200, {"available": all(line["available"] for line in lines), "items": lines}


def calculate_price(_request: web.Request, body: Json) -> Reply:
    items = _items(body)
    if items is None:
        return 422, {"error": "body must be {items: [{sku, quantity}], currency}"}
    unknown = [item["sku"] for item in items if item["sku"] not in CATALOG]
    if unknown:
        return 422, {"error": "unknown sku", "skus": unknown}
    lines = [{"sku": i["sku"], "amount": CATALOG[i["sku"]]["price"] * _quantity(i)} for i in items]
    return 200, {"subtotal": sum(line["amount"] for line in lines), "currency": "USD", "lines": lines}


def estimate_shipping(_request: web.Request, body: Json) -> Reply:
    if _items(body) is None:
        return 422, {"error": "body must be {items: [{sku, quantity}]}"}
    return 200, {"options": SHIPPING_OPTIONS, "estimated": True}


def calculate_tax(_request: web.Request, body: Json) -> Reply:
    subtotal = body.get("subtotal") if isinstance(body, dict) else None
    if not isinstance(subtotal, int) or isinstance(subtotal, bool):
        return 422, {"error": "body must be {subtotal: <integer cents>, currency}"}
    # Cents, rounded half up: 14997 * 0.0825 = 1237.25 -> 1237.
    amount = int((Decimal(subtotal) * TAX_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return 200, {"amount": amount, "rate": float(TAX_RATE), "currency": "USD", "jurisdiction": "US-TX"}


def list_payment_methods(_request: web.Request, _body: Json) -> Reply:
    return 200, {"methods": [{"id": "card", "label": "Card"}, {"id": "paypal", "label": "PayPal"}]}


def authorize_payment(_request: web.Request, body: Json) -> Reply:
    amount = body.get("amount") if isinstance(body, dict) else None
    if not isinstance(amount, int) or amount <= 0:
        return 422, {"error": "body must be {amount: <positive integer cents>, currency}"}
    return 201, {"authorizationId": f"auth-{time.monotonic_ns():x}", "status": "authorized", "amount": amount}


def get_user(request: web.Request, _body: Json) -> Reply:
    user_id = request.match_info["id"]
    user = USERS.get(user_id)
    if user is None:
        return 404, {"error": "user not found", "userId": user_id}
    return 200, {"id": user_id, **user}


def get_preferences(request: web.Request, _body: Json) -> Reply:
    return 200, {"userId": request.match_info["id"], "theme": "dark", "notifications": False, "language": "en-US"}


def get_recommendations(request: web.Request, _body: Json) -> Reply:
    if not request.query.get("user"):
        return 400, {"error": "query parameter 'user' is required"}
    return 200, [
        {"sku": "SKU-CASE", "name": CATALOG["SKU-CASE"]["name"], "score": 0.92},
        {"sku": "SKU-CHARGER", "name": CATALOG["SKU-CHARGER"]["name"], "score": 0.87},
        {"sku": "SKU-SCREEN-PROTECTOR", "name": "Screen Protector", "score": 0.64},
    ]


# The catalog BFF's product service (examples/catalog.yaml) speaks GraphQL, run by
# graphql-core over the same CATALOG. As GraphQL-over-HTTP servers do, it answers 200:
# a request error (syntax, validation, a variable that does not coerce) is
# {"errors": [...]} without "data"; a failed field is null in "data" beside "errors".
CATALOG_SDL = """
type Product { sku: ID! name: String! price: Int! currency: String! stock: Int! }
type Query {
  "null for an unknown sku"
  product(sku: ID!): Product
  products(first: Int = 20): [Product!]!
}
"""
_CATALOG_SCHEMA = build_schema(CATALOG_SDL)


def _catalog_product(sku: str) -> dict[str, Any]:
    item = CATALOG[sku]
    return {"sku": sku, "name": item["name"], "price": item["price"], "currency": "USD", "stock": item["stock"]}


class _CatalogRoot:
    @staticmethod
    def product(_info: Any, sku: str) -> dict[str, Any] | None:
        return _catalog_product(sku) if sku in CATALOG else None

    @staticmethod
    def products(_info: Any, first: int = 20) -> list[dict[str, Any]]:
        return [_catalog_product(sku) for sku in sorted(CATALOG)][: max(0, first)]


def graphql_catalog(_request: web.Request, body: Json) -> Reply:
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return 400, {"errors": [{"message": 'POST {"query": ..., "variables": {...}}'}]}
    variables = body.get("variables")
    result = graphql_sync(
        _CATALOG_SCHEMA,
        body["query"],
        root_value=_CatalogRoot(),
        variable_values=variables if isinstance(variables, dict) else None,
        operation_name=body.get("operationName") if isinstance(body.get("operationName"), str) else None,
    )
    errors = [error.formatted for error in result.errors or []]
    if result.data is None and not any(error.path for error in result.errors or []):
        return 200, {"errors": errors}  # never executed: no "data" at all
    return 200, result.formatted


# ---------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceSpec:
    """One simulated service: where it listens, how slow it is, what it answers."""

    name: str
    port: int
    latency_ms: int
    routes: tuple[tuple[str, str, Handler], ...] = field(default=())


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("cart", 9101, 45, (("GET", "/carts/{id}", get_cart),)),
    ServiceSpec(
        "inventory",
        9102,
        80,
        (("POST", "/check-availability", check_availability), ("GET", "/products/{sku}", get_product)),
    ),
    ServiceSpec("pricing", 9103, 35, (("POST", "/calculate", calculate_price),)),
    ServiceSpec(
        "payment", 9104, 250, (("GET", "/methods", list_payment_methods), ("POST", "/authorize", authorize_payment))
    ),
    ServiceSpec("shipping", 9105, 120, (("POST", "/estimate", estimate_shipping),)),
    ServiceSpec("tax", 9106, 60, (("POST", "/calculate", calculate_tax),)),
    ServiceSpec("users", 9107, 40, (("GET", "/users/{id}", get_user),)),
    ServiceSpec("preferences", 9108, 30, (("GET", "/preferences/{id}", get_preferences),)),
    ServiceSpec("recommendations", 9109, 150, (("GET", "/recommendations", get_recommendations),)),
    ServiceSpec("catalog", 9110, 25, (("POST", "/graphql", graphql_catalog),)),  # examples/catalog.yaml
)
SERVICE_NAMES = tuple(spec.name for spec in SERVICES)


def _spread(jitter: float) -> Callable[[], float]:
    if not 0 <= jitter < 1:
        raise ValueError("latency jitter must be in [0, 1)")
    if jitter == 0:
        return lambda: 1.0
    return functools.partial(random.uniform, 1 - jitter, 1 + jitter)


def _json_response(status: int, body: Json) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda v: json.dumps(v, separators=(",", ":")))


def build_app(spec: ServiceSpec, latency_scale: float = 1.0, latency_jitter: float = 0.0) -> web.Application:
    """An aiohttp app for one service: its routes, a /health route, JSON 404/405 for the rest.

    ``latency_jitter`` spreads each answer's delay uniformly over ``latency * (1 ± jitter)``
    (same mean): real services are not metronomes, and a load generator's clients kept in
    step by identical latencies flatter a server that handles a whole step per wake-up."""
    delay_s = spec.latency_ms * latency_scale / 1000
    spread = _spread(latency_jitter)

    def wrap(handler: Handler, delayed: bool = True) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def endpoint(request: web.Request) -> web.Response:
            started = time.perf_counter()
            raw = await request.read()
            body: Json = None
            if raw and delayed:
                try:
                    body = json.loads(raw)
                except ValueError:
                    return _logged(request, 400, {"error": "request body is not JSON"}, started)
            if delayed and delay_s > 0:
                await asyncio.sleep(delay_s * spread())
            status, reply = handler(request, body)
            return _logged(request, status, reply, started)

        return endpoint

    def _logged(request: web.Request, status: int, reply: Json, started: float) -> web.Response:
        log.info(
            "%-15s %s %s -> %d in %.0f ms request_id=%s traceparent=%s",
            spec.name,
            request.method,
            request.path_qs,
            status,
            (time.perf_counter() - started) * 1000,
            request.headers.get("X-Request-ID", "-"),
            request.headers.get("traceparent", "-"),
        )
        return _json_response(status, reply)

    def health(_request: web.Request, _body: Json) -> Reply:
        return 200, {"status": "ok", "service": spec.name}

    def not_found(request: web.Request, _body: Json) -> Reply:
        known = sorted({path for _method, path, _handler in spec.routes})
        return 404, {
            "error": "not found",
            "service": spec.name,
            "method": request.method,
            "path": request.path,
            "routes": known,
        }

    app = web.Application()
    for method, path, handler in spec.routes:
        app.router.add_route(method, path, wrap(handler))
    app.router.add_route("GET", "/health", wrap(health))
    # Anything else, any method: a JSON 404 (never aiohttp's HTML page), without the latency.
    app.router.add_route("*", "/{tail:.*}", wrap(not_found, delayed=False))
    return app


def select(only: Iterable[str] = (), without: Iterable[str] = ()) -> list[ServiceSpec]:
    """The services to run; unknown names are an error, not a silent no-op."""
    only, without = set(only), set(without)
    unknown = (only | without) - set(SERVICE_NAMES)
    if unknown:
        raise ValueError(f"unknown service(s): {', '.join(sorted(unknown))}; known: {', '.join(SERVICE_NAMES)}")
    return [s for s in SERVICES if (not only or s.name in only) and s.name not in without]


# ---------------------------------------------------------------------------
# Running: in the foreground (CLI) or in a background thread (tests)
# ---------------------------------------------------------------------------


async def _start(
    specs: Iterable[ServiceSpec],
    host: str,
    ports: Mapping[str, int],
    latency_scale: float,
    latency_jitter: float = 0.0,
) -> tuple[list[web.AppRunner], dict[str, int]]:
    runners: list[web.AppRunner] = []
    bound: dict[str, int] = {}
    try:
        for spec in specs:
            runner = web.AppRunner(build_app(spec, latency_scale, latency_jitter), access_log=None)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, host, ports.get(spec.name, spec.port), reuse_address=True)
            await site.start()
            bound[spec.name] = runner.addresses[0][1]
    except BaseException:
        for runner in runners:
            await runner.cleanup()
        raise
    return runners, bound


class SimulatorHandle:
    """The simulator running on its own event loop in a daemon thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, runners: list[web.AppRunner]):
        self._loop, self._thread, self._runners = loop, thread, runners
        self.host = ""
        self.ports: dict[str, int] = {}

    def url(self, service: str) -> str:
        """The base URL of one running service, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self.ports[service]}"

    def stop(self) -> None:
        """Close every server and end the thread; safe to call twice."""
        if not self._thread.is_alive():
            return

        async def cleanup() -> None:
            for runner in self._runners:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def start_in_thread(
    ports: Mapping[str, int] | None = None,
    *,
    host: str = "127.0.0.1",
    only: Iterable[str] = (),
    without: Iterable[str] = (),
    latency_scale: float = 1.0,
    latency_jitter: float = 0.0,
) -> SimulatorHandle:
    """Start the selected services in a background thread and return once they listen.

    ``ports`` overrides a service's default port; port 0 picks a free one, and the
    handle's ``ports`` tells which. Tests use ``{name: 0 for name in SERVICE_NAMES}``.
    """
    specs = select(only, without)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="simulator", daemon=True)
    thread.start()
    try:
        future = asyncio.run_coroutine_threadsafe(_start(specs, host, ports or {}, latency_scale, latency_jitter), loop)
        runners, bound = future.result(timeout=10)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        raise
    handle = SimulatorHandle(loop, thread, runners)
    handle.host, handle.ports = host, bound
    return handle


async def _serve_forever(specs: list[ServiceSpec], host: str, latency_scale: float, latency_jitter: float) -> None:
    runners, bound = await _start(specs, host, {}, latency_scale, latency_jitter)
    for name, port in bound.items():
        log.info("%-15s listening on http://%s:%d", name, host, port)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the Checkout BFF's demo downstream services on loopback.")
    parser.add_argument("--only", type=_names, default=[], help="comma-separated services to run (default: all)")
    parser.add_argument("--without", type=_names, default=[], help="comma-separated services to leave out")
    parser.add_argument("--latency-scale", type=float, default=1.0, help="multiply every latency (0: answer at once)")
    parser.add_argument(
        "--latency-jitter",
        type=float,
        default=0.0,
        help="spread each delay uniformly over latency * (1 ± J), 0 <= J < 1 (default 0: exact)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    args = parser.parse_args(argv)
    if args.latency_scale < 0:
        parser.error("--latency-scale must be >= 0")
    if not 0 <= args.latency_jitter < 1:
        parser.error("--latency-jitter must be in [0, 1)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        specs = select(args.only, args.without)
    except ValueError as exc:
        parser.error(str(exc))
    if not specs:
        parser.error("no service left to run")
    asyncio.run(_serve_forever(specs, args.host, args.latency_scale, args.latency_jitter))
    return 0


if __name__ == "__main__":
    sys.exit(main())
