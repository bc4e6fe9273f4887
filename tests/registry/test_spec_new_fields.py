"""The spec shows the fields of contract sections 7 and 10 in the template's sections, and
says nothing of them for services and calls that do not set them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from registry.config.loading import config_read
from registry.config.plan import plan_from_document
from registry.spec import expression_words, spec_build, spec_markdown

CHECKOUT = Path(__file__).resolve().parents[2] / "examples" / "checkout.yaml"


def resilient_checkout() -> dict[str, Any]:
    document = config_read(CHECKOUT)
    inventory = document["services"]["inventory"]
    inventory["deadline_header"] = "X-Request-Deadline-Ms"
    inventory["breaker"].update(min_calls=20, failure_rate=50)
    inventory["retry"].update(budget_percent=20, budget_min_per_s=3)
    return document


def markdown(document: dict[str, Any]) -> str:
    return spec_markdown(spec_build(plan_from_document(document, version="t"), date="d"))


@pytest.fixture(scope="module")
def text() -> str:
    return markdown(resilient_checkout())


def test_for_each_when_and_per_call_cache_are_in_the_call_sequence(text: str) -> None:
    assert (
        "| 2 (parallel; for each cart.items, ≤4 in parallel) | Inventory: GET /products/{sku}; cached 60s "
        "| Yes | 500ms | Fail request |" in text
    )
    assert (
        "| 2 (parallel) | Recommendations: GET /recommendations?user={userId}; when length(cart.items) > 0 "
        "| No | 1000ms | Return empty array |" in text
    )
    assert "| Cache TTL | No cache (per-call cache: products 60s) |" in text


def test_per_call_cache_and_dedupe_are_in_the_caching_strategy(text: str) -> None:
    caching = text.split("## Caching Strategy")[1].split("## Monitoring")[0]
    assert (
        "| GET /v1/checkout/cart/{cart_id}, call products (Inventory: GET /products/{sku}) | Per-call cache of the "
        "downstream answer, Redis-shared (shared, keyed by the rendered request) | 60s | "
        "TTL (tags: catalog, product:{{ item.sku }}) |" in caching
    )
    assert "| Inventory Service calls | In-flight dedupe" in caching
    assert "Cart Service calls" not in caching  # cart has no dedupe


def test_rate_breaker_retry_budget_and_deadline_header_are_in_the_resilience_tables(text: str) -> None:
    assert "| Inventory Service | 5 failures in 60s, or ≥50% of ≥20 calls in 60s | 30s | 3 requests |" in text
    assert "| Cart Service | 5 failures in 60s | 30s | 3 requests |" in text
    assert (
        "| Inventory Service | 2 (budget: 20% of calls, at least 3/s) | Exponential: 100ms, 200ms | 5xx, timeout |"
        in text
    )
    assert "| Cart Service | 2 | Exponential: 100ms, 200ms | 5xx, timeout |" in text
    assert (
        "- ☑ Deadline propagated to downstream calls (the ms left, in headers: inventory X-Request-Deadline-Ms)" in text
    )


def test_without_the_resilience_fields_none_of_their_words_appear() -> None:
    text = markdown(config_read(CHECKOUT))
    assert "budget" not in text and "Deadline propagated" not in text and "% of ≥" not in text


def test_a_call_cached_with_forwarded_credentials_is_per_user() -> None:
    document = config_read(CHECKOUT)
    document["endpoints"][2]["calls"][0]["cache"] = {"ttl_s": 5, "tags": []}
    caching = markdown(document).split("## Caching Strategy")[1]
    assert (
        "call cart (Cart: GET /carts/{id}) | Per-call cache of the downstream answer, Redis-shared (per user" in caching
    )
    assert "| 5s | TTL only |" in caching


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("{{ length(cart.items) > `0` }}", "length(cart.items) > 0"),
        ("{{ cart.vip == `true` }}", "cart.vip == true"),
        ("{{ cart.kind == 'gift' }}", "cart.kind == 'gift'"),
        ('{{ contains(cart.tags, `"x"`) }}', 'contains(cart.tags, `"x"`)'),
    ],
)
def test_expression_words(source: str, words: str) -> None:
    assert expression_words(source) == words
