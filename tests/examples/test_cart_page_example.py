"""The Checkout example's cart page (contract section 10) served by the real executor
against the simulator: one product call per item in item order, recommendations only
for a cart with items, product answers reused from the per-call cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from orchestration.context import RequestContext
from orchestration.downstream import DownstreamPool
from orchestration.executor import Executor, Success
from registry.config.plan import plan_from_document

CHECKOUT = Path(__file__).resolve().parents[2] / "examples" / "checkout.yaml"


def run_cart_page(sim: Any, cart_id: str, executor: Executor | None = None) -> tuple[Any, Executor]:
    document = yaml.safe_load(CHECKOUT.read_text())
    for name, service in document["services"].items():
        service["base_url"] = sim.url(name)
    if executor is None:
        plan = plan_from_document(document, version="example")
        executor = Executor(plan, DownstreamPool(plan.services, environ={}))
    endpoint = next(e for e in executor.plan.endpoints if e.name == "cart-page")
    return executor.run(endpoint, RequestContext(method="GET", path_params={"cart_id": cart_id})), executor


def test_the_cart_page_lists_each_items_product_in_order(sim: Any) -> None:
    result, executor = run_cart_page(sim, "c-1001")
    assert isinstance(result, Success) and not result.partial
    assert [(p["sku"], p["unitPrice"]) for p in result.body["items"]] == [
        ("SKU-HEADPHONES", 7999),
        ("SKU-CHARGER", 3999),
        ("SKU-CASE", 2999),
    ]
    assert [r["sku"] for r in result.body["recommendations"]][:2] == ["SKU-CASE", "SKU-CHARGER"]
    again, _ = run_cart_page(sim, "c-1001", executor)
    assert again == result


def test_an_empty_cart_asks_for_no_recommendations(sim: Any) -> None:
    result, _ = run_cart_page(sim, "c-empty")
    assert result == Success({"cartId": "c-empty", "items": [], "recommendations": []}, False, ())
