"""Composition fields (contract section 10) through check, import/export, compiler and admin."""

from __future__ import annotations

from typing import Any

import pytest

from registry import models
from registry.config.dumping import config_dump
from registry.config.plan import plan_from_document
from registry.config.schema import DOCUMENT
from registry.config.structure import normalize
from registry.config.validation import config_check
from tests.registry.test_command import run


def cart_page() -> dict[str, Any]:
    return {
        "name": "cart-page",
        "method": "GET",
        "path": "/cart-page",
        "timeout_ms": 2000,
        "calls": [
            {"id": "cart", "service": "cart", "stage": 1, "path": "/carts/{{ request.query.cartId }}"},
            {
                "id": "recs",
                "service": "shipping",
                "stage": 2,
                "path": "/recs",
                "required": False,
                "when": "{{ length(cart.items) > `0` }}",
                "fallback": [],
            },
            {
                "id": "products",
                "service": "inventory",
                "stage": 2,
                "for_each": "{{ cart.items }}",
                "max_parallel": 4,
                "path": "/products/{{ item.sku }}",
                "query": {"position": "{{ index }}"},
                "cache": {"ttl_s": 30, "tags": ["catalog", "product:{{ item.sku }}"]},
            },
        ],
        "response": {"items": "{{ products }}", "recs": "{{ recs }}"},
    }


@pytest.fixture
def composed(document: dict[str, Any]) -> dict[str, Any]:
    document["services"]["inventory"]["dedupe"] = True
    document["endpoints"].append(cart_page())
    return document


def problems(document: Any) -> list[str]:
    return [str(problem) for problem in config_check(document)]


def call_of(document: dict[str, Any], call_id: str) -> dict[str, Any]:
    return next(c for c in document["endpoints"][2]["calls"] if c["id"] == call_id)


def test_the_cart_page_passes_the_check(composed):
    assert problems(composed) == []


def test_item_outside_a_for_each_call_is_refused_with_its_location(composed):
    call_of(composed, "recs")["path"] = "/recs/{{ item.sku }}"
    composed["endpoints"][2]["response"]["first"] = "{{ index }}"
    assert problems(composed) == [
        "endpoints[2].calls[1].path: 'item' is only available in the templates of a call with for_each",
        "endpoints[2].response.first: 'index' is only available in the templates of a call with for_each",
    ]


def test_item_in_the_for_each_itself_is_refused(composed):
    call_of(composed, "products")["for_each"] = "{{ item.parts }}"
    assert problems(composed) == [
        "endpoints[2].calls[2].for_each: 'item' is only available in the templates of a call with for_each"
    ]


def test_item_and_index_are_reserved_call_ids(composed):
    call_of(composed, "recs")["id"] = "item"
    assert problems(composed)[0] == (
        "endpoints[2].calls[1].id: 'item' is reserved; call ids must not be request, user, event, item or index"
    )


def test_when_and_for_each_must_parse_and_be_one_expression(composed):
    call_of(composed, "recs")["when"] = "{{ length(cart.items) > }}"
    call_of(composed, "products")["for_each"] = "items: {{ cart.items }}"
    found = problems(composed)
    assert len(found) == 2
    assert found[0].startswith("endpoints[2].calls[1].when: invalid expression 'length(cart.items) >'")
    assert found[1] == (
        "endpoints[2].calls[2].for_each: must be one '{{ expr }}' JMESPath expression, got 'items: {{ cart.items }}'"
    )


def test_when_reads_only_earlier_calls(composed):
    call_of(composed, "recs")["when"] = "{{ products }}"
    assert problems(composed) == [
        "endpoints[2].calls[1].when: call 'products' runs in the same stage (2); "
        "a call may only use calls of earlier stages"
    ]


def test_max_parallel_below_one_and_without_for_each(composed):
    call_of(composed, "products")["max_parallel"] = 0
    call_of(composed, "recs")["max_parallel"] = 2
    assert problems(composed) == [
        "endpoints[2].calls[1].max_parallel: only used by a call with for_each",
        "endpoints[2].calls[2].max_parallel: must be at least 1, got 0",
    ]


def test_a_call_cache_needs_a_safe_method_and_a_positive_ttl(composed):
    products = call_of(composed, "products")
    products["method"] = "POST"
    products["cache"]["ttl_s"] = 0
    assert problems(composed) == [
        "endpoints[2].calls[2].cache.ttl_s: must be at least 1, got 0",
        "endpoints[2].calls[2].cache: only answers to GET calls (or calls marked idempotent) are cached, "
        "this one is POST",
    ]
    products["idempotent"] = True
    products["cache"]["ttl_s"] = 5
    assert problems(composed) == []


def test_the_compiler_puts_the_fields_in_the_plan(composed):
    plan = plan_from_document(composed, version="t")
    endpoint = plan.endpoints[2]
    recs, products = endpoint.calls[1], endpoint.calls[2]
    assert recs.when is not None and recs.when.render({"cart": {"items": []}}) is False
    assert products.for_each is not None and products.max_parallel == 4
    assert products.cache is not None and products.cache.ttl_s == 30
    assert [tag.source for tag in products.cache.tags] == ["catalog", "product:{{ item.sku }}"]
    assert plan.services["inventory"].dedupe is True
    assert plan.services["cart"].dedupe is False and endpoint.calls[0].cache is None


@pytest.mark.django_db
def test_import_then_export_round_trips_the_composition_fields(composed, write_yaml, tmp_path):
    assert run("import", str(write_yaml(composed)))[0] == 0
    call = models.Call.objects.get(call_id="products")
    assert (call.for_each, call.max_parallel, call.cache_ttl_s) == ("{{ cart.items }}", 4, 30)
    assert models.Service.objects.get(name="inventory").dedupe is True
    code, exported, _ = run("export")
    assert (code, exported) == (0, config_dump(normalize(composed, DOCUMENT)))
    assert "for_each: '{{ cart.items }}'" in exported and "dedupe: true" in exported
    models.Endpoint.objects.all().delete()
    models.Service.objects.all().delete()
    assert run("import", str(write_yaml(exported, "again.yaml")))[0] == 0
    assert run("export") == (0, exported, "")


@pytest.mark.django_db
def test_the_admin_shows_and_checks_the_call_fields(composed, write_yaml, admin_client):
    assert run("import", str(write_yaml(composed)))[0] == 0
    endpoint = models.Endpoint.objects.get(name="cart-page")
    page = admin_client.get(f"/admin/registry/endpoint/{endpoint.pk}/change/").content.decode()
    for field in ("when", "for_each", "max_parallel", "cache_ttl_s", "cache_tags"):
        assert f'name="calls-0-{field}"' in page
    service = models.Service.objects.get(name="inventory")
    page = admin_client.get(f"/admin/registry/service/{service.pk}/change/").content.decode()
    tag = page.split('name="dedupe"')[0].rsplit("<input", 1)[1] + page.split('name="dedupe"')[1].split(">", 1)[0]
    assert "checked" in tag
