"""/console/spec/ shows the fields of contract sections 7 and 8 (the same tables as ``gateway spec``)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from tests.registry.test_spec_contract_fields import resilient_checkout, storefront_catalog

pytestmark = pytest.mark.django_db(transaction=True)


def page_text(client, make_user, tmp_path, document: dict[str, Any]) -> str:
    from gateway_project import wiring

    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    call_command("gateway", "import", str(path))
    wiring.runtime_holder().invalidate()
    client.force_login(make_user("viewer"))
    response = client.get("/console/spec/")
    assert response.status_code == 200
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_spec_page_shows_graphql_cdn_p99_and_introspection(client, make_user, tmp_path) -> None:
    text = page_text(client, make_user, tmp_path, storefront_catalog())
    assert "1 Catalog: GraphQL query Listing (POST /graphql) Yes 400ms Fail request" in text
    assert "Cache TTL 300s (shared, CDN)" in text
    assert "Redis + CDN: gateway response cache, Redis-shared (shared); CDN (s-maxage, Surrogate-Key;" in text
    assert "Total endpoint latency P99 (catalog) > 400ms (p99_target_ms) (GatewayEndpointLatencyP99High) Slack" in text
    assert "OAuth2 introspection (https://auth.example.com/introspect; active answers cached ≤ 45s;" in text
    assert "GATEWAY_INTROSPECTION" not in text


def test_spec_page_shows_stale_hedge_and_response_contract(client, make_user, tmp_path) -> None:
    text = page_text(client, make_user, tmp_path, resilient_checkout())
    assert "Shipping: POST /estimate; stale ≤ 300s on error No 500ms Return null" in text
    assert "2 (hedged: a second attempt after 50ms unanswered)" in text
    assert "Response contract JSON Schema, on violation: fail (502 CONTRACT_VIOLATION)" in text
    assert "response_schema (checkout-summary) 502 Envelope CONTRACT_VIOLATION" in text
