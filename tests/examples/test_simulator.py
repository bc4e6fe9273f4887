"""The demo simulator answers like the Checkout BFF's services, over real HTTP.

These tests pin the numbers the README and the demo promise: the checkout summary
assembled from these answers is exactly the mission's (subtotal 14997 USD, tax
1237 at 8.25 %, total 16234, 3 items, availability confirmed).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from types import ModuleType
from typing import Any

import pytest

CART_ITEMS = [
    {"sku": "SKU-HEADPHONES", "name": "Wireless Headphones", "quantity": 1, "unitPrice": 7999},
    {"sku": "SKU-CHARGER", "name": "USB-C Charger 65W", "quantity": 1, "unitPrice": 3999},
    {"sku": "SKU-CASE", "name": "Protective Case", "quantity": 1, "unitPrice": 2999},
]
SKUS = [{"sku": item["sku"], "quantity": item["quantity"]} for item in CART_ITEMS]


def http(
    url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """One request; returns (status, parsed JSON body) for 2xx and error statuses alike."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.headers["Content-Type"].startswith("application/json")
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        assert error.headers["Content-Type"].startswith("application/json")
        return error.code, json.loads(error.read())


def test_cart_answers_the_demo_cart_and_404_for_an_unknown_one(sim: Any) -> None:
    assert http(sim.url("cart") + "/carts/c-1001") == (
        200,
        {"id": "c-1001", "userId": "42", "currency": "USD", "items": CART_ITEMS},
    )
    assert http(sim.url("cart") + "/carts/c-empty")[1]["items"] == []
    assert http(sim.url("cart") + "/carts/c-9999") == (404, {"error": "cart not found", "cartId": "c-9999"})


def test_inventory_confirms_availability_per_line(sim: Any) -> None:
    status, body = http(sim.url("inventory") + "/check-availability", "POST", {"items": SKUS})
    assert status == 200
    assert body["available"] is True
    assert [line["sku"] for line in body["items"]] == [item["sku"] for item in SKUS]
    status, body = http(
        sim.url("inventory") + "/check-availability", "POST", {"items": [{"sku": "SKU-CASE", "quantity": 4}]}
    )
    assert (status, body["available"]) == (200, False)
    assert http(sim.url("inventory") + "/check-availability", "POST", {"nope": 1})[0] == 422


def test_pricing_totals_the_catalog_prices(sim: Any) -> None:
    status, body = http(sim.url("pricing") + "/calculate", "POST", {"items": SKUS, "currency": "USD"})
    assert status == 200
    assert (body["subtotal"], body["currency"]) == (14997, "USD")
    status, body = http(sim.url("pricing") + "/calculate", "POST", {"items": [{"sku": "SKU-NOPE", "quantity": 1}]})
    assert (status, body["skus"]) == (422, ["SKU-NOPE"])


def test_tax_is_8_25_percent_rounded_half_up(sim: Any) -> None:
    status, body = http(sim.url("tax") + "/calculate", "POST", {"subtotal": 14997, "currency": "USD"})
    assert status == 200
    assert (body["amount"], body["rate"]) == (1237, 0.0825)
    assert http(sim.url("tax") + "/calculate", "POST", {"subtotal": 200})[1]["amount"] == 17  # 16.5 -> 17
    assert http(sim.url("tax") + "/calculate", "POST", {"subtotal": "14997"})[0] == 422


def test_shipping_estimates_two_options(sim: Any) -> None:
    status, body = http(sim.url("shipping") + "/estimate", "POST", {"items": SKUS})
    assert status == 200
    assert body["estimated"] is True
    assert [option["id"] for option in body["options"]] == ["standard", "express"]


def test_payment_lists_methods_and_authorizes(sim: Any) -> None:
    assert http(sim.url("payment") + "/methods")[1]["methods"][0]["id"] == "card"
    status, body = http(sim.url("payment") + "/authorize", "POST", {"amount": 16234, "currency": "USD"})
    assert (status, body["status"], body["amount"]) == (201, "authorized", 16234)
    assert http(sim.url("payment") + "/authorize", "POST", {"amount": 0})[0] == 422


def test_dashboard_services(sim: Any) -> None:
    assert http(sim.url("users") + "/users/42") == (
        200,
        {"id": "42", "name": "Ada Lovelace", "email": "ada@example.com", "memberSince": "2021-03-14"},
    )
    assert http(sim.url("users") + "/users/404")[0] == 404
    status, body = http(sim.url("preferences") + "/preferences/42")
    assert (status, body["theme"], body["notifications"]) == (200, "dark", False)
    status, body = http(sim.url("recommendations") + "/recommendations?user=42")
    assert status == 200
    assert isinstance(body, list)
    assert [item["sku"] for item in body] == ["SKU-CASE", "SKU-CHARGER", "SKU-SCREEN-PROTECTOR"]
    assert http(sim.url("recommendations") + "/recommendations")[0] == 400


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH"])
def test_unknown_paths_and_methods_get_a_json_404(sim: Any, method: str) -> None:
    status, body = http(sim.url("tax") + "/no/such/path", method, {} if method in {"POST", "PUT", "PATCH"} else None)
    assert status == 404
    assert body["service"] == "tax"
    assert body["method"] == method
    assert body["path"] == "/no/such/path"
    assert http(sim.url("cart") + "/carts/c-1001", "DELETE")[0] == 404


def test_bad_json_is_a_400_and_every_service_has_health(sim: Any, simulator: ModuleType) -> None:
    assert http(sim.url("pricing") + "/calculate", "POST", raw=b"{not json")[0] == 400
    for name in simulator.SERVICE_NAMES:
        assert http(sim.url(name) + "/health") == (200, {"status": "ok", "service": name})


def test_each_request_is_logged_with_its_request_id_and_traceparent(sim: Any, caplog: pytest.LogCaptureFixture) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with caplog.at_level(logging.INFO, logger="simulator"):
        http(sim.url("cart") + "/carts/c-1001", headers={"X-Request-ID": "req-123", "traceparent": traceparent})
    lines = [record.getMessage() for record in caplog.records if "req-123" in record.getMessage()]
    assert len(lines) == 1
    assert "cart" in lines[0]
    assert "GET /carts/c-1001 -> 200" in lines[0]
    assert f"traceparent={traceparent}" in lines[0]


def test_services_answer_after_their_declared_latency(simulator: ModuleType) -> None:
    with simulator.start_in_thread({"payment": 0, "pricing": 0}, only=["payment", "pricing"]) as handle:
        assert set(handle.ports) == {"payment", "pricing"}
        started = time.perf_counter()
        assert http(handle.url("payment") + "/methods")[0] == 200
        assert time.perf_counter() - started >= 0.24  # 250 ms declared
        started = time.perf_counter()
        assert http(handle.url("pricing") + "/nope")[0] == 404
        assert time.perf_counter() - started < 0.2  # a 404 answers at once


def test_jitter_spreads_each_delay_around_the_declared_latency(simulator: ModuleType) -> None:
    """``--latency-jitter 0.5``: payment's 250 ms becomes 125 to 375 ms, not the same every time."""
    with simulator.start_in_thread({"payment": 0}, only=["payment"], latency_jitter=0.5) as handle:
        took = []
        for _ in range(6):
            started = time.perf_counter()
            assert http(handle.url("payment") + "/methods")[0] == 200
            took.append(time.perf_counter() - started)
    assert all(0.12 <= t < 0.6 for t in took)
    assert max(took) - min(took) > 0.01  # six exact 250 ms delays would agree within a few ms
    with pytest.raises(SystemExit):
        simulator.main(["--latency-jitter", "1"])


def test_without_leaves_a_service_out_and_its_port_closed(simulator: ModuleType) -> None:
    ports = {name: 0 for name in simulator.SERVICE_NAMES}
    with simulator.start_in_thread(ports, without=["shipping"], latency_scale=0) as handle:
        assert "shipping" not in handle.ports
        assert len(handle.ports) == len(simulator.SERVICE_NAMES) - 1
    with pytest.raises(ValueError, match="unknown service"):
        simulator.select(without=["shiping"])
    with pytest.raises(SystemExit):
        simulator.main(["--only", "nope"])


def test_stopping_closes_the_ports(simulator: ModuleType) -> None:
    handle = simulator.start_in_thread({"cart": 0}, only=["cart"], latency_scale=0)
    url = handle.url("cart") + "/health"
    assert http(url)[0] == 200
    handle.stop()
    handle.stop()  # twice is fine
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)
