"""/console/explain/ of a for_each call: one waterfall row per element beside the call's row;
a skipped call says so (contract sections 6 and 10)."""

from __future__ import annotations

import html
import re

import pytest
import yaml
from django.contrib.auth.models import Permission
from django.core.management import call_command

from tests.e2e.ops_config import ops_config

pytestmark = pytest.mark.django_db(transaction=True)


def test_explain_shows_a_row_per_element_and_skipped_calls(client, make_user, tmp_path, fake_downstream) -> None:
    from gateway_project import wiring

    cart = fake_downstream({"*": (200, {"items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]})})
    shipping = fake_downstream({"*": (200, {"sku": "any"})})
    document = yaml.safe_load(ops_config(cart=cart.url, shipping=shipping.url))
    document["endpoints"].append(
        {
            "name": "cart-products",
            "method": "GET",
            "path": "/cart-products",
            "calls": [
                {"id": "cart", "service": "cart", "stage": 1, "path": "/carts/1"},
                {
                    "id": "products",
                    "service": "shipping",
                    "stage": 2,
                    "for_each": "{{ cart.items }}",
                    "max_parallel": 2,
                    "path": "/products/{{ item.sku }}",
                },
                {
                    "id": "never",
                    "service": "shipping",
                    "stage": 2,
                    "when": "{{ length(cart.items) > `5` }}",
                    "path": "/never",
                    "required": False,
                    "fallback": [],
                },
            ],
            "response": {"items": "{{ products }}", "never": "{{ never }}"},
        }
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    call_command("gateway", "import", str(path))
    wiring.runtime_holder().invalidate()
    for name in wiring.runtime_holder().current().plan.services:
        wiring.runtime_holder().current().pool.breaker(name).reset()
    user = make_user("explainer")
    user.user_permissions.add(Permission.objects.get(codename="explain_requests"))
    client.force_login(user)

    response = client.post("/console/explain/", {"endpoint": "cart-products"})

    assert response.status_code == 200
    page = response.content.decode()
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))
    assert "Answer: 200" in text, text[:3000]
    rows = re.findall(r'<tr data-call="([^"]+)"', page)
    assert rows == ["cart", "products", "products[0]", "products[1]", "products[2]", "never"]
    assert re.search(r"2 products shipping, required .*? elements=3", text), text
    for index in range(3):
        assert re.search(rf"2 products\[{index}\] shipping, required [0-9.]+ ms [0-9.]+ ms 200 in", text), text
    assert re.search(r"2 never shipping, optional 0\.0 ms 0\.0 ms none .*? skipped", text), text
    assert sum(shipping.hits.values()) == 3
