"""/console/spec/ shows the fields of contract sections 7 and 10 (the same tables as ``gateway spec``)."""

from __future__ import annotations

import html
import re

import pytest
import yaml
from django.core.management import call_command

from tests.registry.test_spec_new_fields import resilient_checkout

pytestmark = pytest.mark.django_db(transaction=True)


def test_spec_page_shows_composition_and_resilience_fields(client, make_user, tmp_path) -> None:
    from gateway_project import wiring

    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(resilient_checkout(), sort_keys=False), encoding="utf-8")
    call_command("gateway", "import", str(path))
    wiring.runtime_holder().invalidate()
    client.force_login(make_user("viewer"))

    response = client.get("/console/spec/")

    assert response.status_code == 200
    text = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))
    assert "2 (parallel; for each cart.items, ≤4 in parallel) Inventory: GET /products/{sku}; cached 60s Yes" in text
    assert "Recommendations: GET /recommendations?user={userId}; when length(cart.items) > 0 No 1000ms" in text
    assert "5 failures in 60s, or ≥50% of ≥20 calls in 60s" in text
    assert "2 (budget: 20% of calls, at least 3/s)" in text
    assert "Deadline propagated to downstream calls (the ms left, in headers: inventory X-Request-Deadline-Ms)" in text
    assert "Inventory Service calls In-flight dedupe" in text
    assert "TTL (tags: catalog, product:{{ item.sku }})" in text
