"""/console/spec/, blast radius on service pages and the board, /console/explain/ (contract section 6)."""

from __future__ import annotations

import html
import json
import re

import pytest
from django.contrib.auth.models import Permission

from console.selectors import service_dependents_get

pytestmark = pytest.mark.django_db(transaction=True)


def _text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


def test_spec_page_is_for_staff_only(client, served, make_user) -> None:
    assert client.get("/console/spec/").status_code == 302
    client.force_login(make_user("nobody", staff=False))
    assert client.get("/console/spec/").status_code == 302


def test_spec_page_shows_declared_and_measured_figures_and_field_sources(client, served, make_user) -> None:
    for _ in range(4):
        assert client.get("/v1/cart/1").status_code == 200
    client.force_login(make_user("viewer"))

    response = client.get("/console/spec/")

    assert response.status_code == 200
    text = _text(response)
    for title in (
        "Orchestration Layer Overview",
        "Downstream Service Registry",
        "Error Handling Strategy",
        "Circuit Breaker Configuration",
        "Retry Policy",
        "Rate Limiting",
        "Caching Strategy",
        "Monitoring and Observability",
    ):
        assert title in text
    assert "Cart Service" in text and "45ms" in text and "99.95%" in text
    # cart answered 4 of 4: measured success beside the declared SLA
    assert re.search(r"Cart Service .*? 99\.95% .*? \d+ms / \d+ms 100\.00%", text), text[:2000]
    assert "Shipping Service" in text and "no calls" in text
    assert "1 (parallel) Cart: GET /carts/1 Yes 1000ms Fail request" in text
    assert "1 (parallel) Shipping: GET /estimate No 1000ms Return null" in text
    assert "shipping ship shipping" in text  # response field `shipping` comes from call `ship`
    assert "@media print" in response.content.decode()


def test_spec_page_measures_each_endpoint(client, served, make_user) -> None:
    """Per endpoint: the requests that finished in the window, their p50/p95 and success
    beside the declared total timeout; an endpoint nobody called says so."""
    for _ in range(3):
        assert client.get("/v1/cart/1").status_code == 200
    assert client.get("/v1/nowhere").status_code == 404  # matched no endpoint: no series
    client.force_login(make_user("viewer"))

    page = client.get("/console/spec/").content.decode()

    def measured(endpoint: str) -> str:
        section = re.search(rf'data-endpoint="{endpoint}">(.*?)</section>', page, re.S)
        assert section is not None
        table = re.search(r'data-testid="endpoint-measured">(.*?)</table>', section.group(1), re.S)
        assert table is not None
        return _text_of(table.group(1))

    assert re.fullmatch(r".* \d+ms \d+ms / \d+ms 100\.00% 3", measured("cart-view")), measured("cart-view")
    assert measured("summary").endswith("— / — no requests 0")


def _text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()


def test_service_page_shows_the_blast_radius(client, served, make_user) -> None:
    client.force_login(make_user("viewer"))
    text = _text(client.get("/console/services/cart/"))
    assert "Blast radius" in text
    assert "cart-view GET /v1/cart/{cart_id} cart Yes 502 DOWNSTREAM_FAILURE" in text
    assert "summary GET /v1/summary cart Yes" in text
    shipping = _text(client.get("/console/services/shipping/"))
    assert (
        "summary GET /v1/summary ship No 200 with partialData (the call's fallback in place) Return null shipping"
        in shipping
    )


def test_dependents_selector_for_the_admin_api(served) -> None:
    dependents = service_dependents_get(name="shipping")
    assert [d.as_dict() for d in dependents] == [
        {
            "endpoint": "summary",
            "method": "GET",
            "path": "/v1/summary",
            "call": "ship",
            "order": "1 (parallel)",
            "required": False,
            "failure": "200 with partialData (the call's fallback in place)",
            "fallback": "Return null",
            "fallbackValue": None,
            "responseFields": ["shipping"],
        }
    ]
    assert service_dependents_get(name="nope") is None


def test_an_open_breaker_on_the_board_names_what_it_degrades_or_fails(client, served, make_user) -> None:
    client.force_login(make_user("viewer"))
    assert "Degrades summary" not in _text(client.get("/console/"))
    served.pool.breaker("shipping").force_open()
    served.pool.breaker("cart").force_open()
    text = _text(client.get("/console/"))
    assert "Degrades summary" in text
    assert "Fails cart-view, summary" in text


def _explainer(make_user):
    user = make_user("explainer")
    user.user_permissions.add(Permission.objects.get(codename="explain_requests"))
    return user


def test_explain_needs_its_permission(client, served, make_user) -> None:
    client.force_login(make_user("viewer"))
    assert client.get("/console/explain/").status_code == 403
    assert client.post("/console/explain/", {"endpoint": "summary"}).status_code == 403


def test_explain_runs_the_real_engine_and_shows_the_waterfall(client, served, make_user) -> None:
    client.force_login(_explainer(make_user))
    assert client.get("/console/explain/?endpoint=cart-view").status_code == 200

    response = client.post("/console/explain/", {"endpoint": "summary", "claims": '{"sub": "u1"}'})

    assert response.status_code == 200
    text = _text(response)
    assert re.search(r"Answer: 200 ", text)
    assert re.search(r"1 cart cart, required [0-9.]+ ms [0-9.]+ ms 200 in [0-9.]+ s closed 200", text), text
    # shipping answers 500: no retry configured, fallback used
    assert re.search(r"1 ship shipping, optional .*? 500 in [0-9.]+ s closed 500 fallback used", text), text
    shown = re.search(r'data-testid="answer">(.*?)</pre>', response.content.decode(), re.S)
    assert shown is not None
    answer = json.loads(html.unescape(shown.group(1)))
    assert answer["partialData"] is True and answer["failedServices"] == ["shipping"]


def test_a_console_explain_run_is_counted_in_metrics(client, served, make_user) -> None:
    from prometheus_client import REGISTRY

    def count(source: str) -> float:
        return REGISTRY.get_sample_value("gateway_explain_requests_total", {"source": source}) or 0.0

    client.force_login(_explainer(make_user))
    before, header_before = count("console"), count("header")
    client.get("/console/explain/?endpoint=cart-view")  # the form alone runs nothing
    assert count("console") == before
    assert "Answer: 200" in _text(client.post("/console/explain/", {"endpoint": "cart-view", "path_cart_id": "42"}))
    assert (count("console"), count("header")) == (before + 1, header_before)


def test_explain_path_values_reach_the_downstream(client, served, make_user) -> None:
    client.force_login(_explainer(make_user))
    text = _text(client.post("/console/explain/", {"endpoint": "cart-view", "path_cart_id": "42"}))
    assert "Answer: 200" in text and "1 cart cart, required" in text


def test_explain_bad_claims_or_body_show_the_clients_400(client, served, make_user) -> None:
    client.force_login(_explainer(make_user))
    bad_claims = _text(client.post("/console/explain/", {"endpoint": "summary", "claims": "{not json"}))
    assert "Answer: 400" in bad_claims and "BAD_REQUEST" in bad_claims and "claims are not valid JSON" in bad_claims
    bad_body = _text(client.post("/console/explain/", {"endpoint": "summary", "body": "[1,"}))
    assert "Answer: 400" in bad_body and "Request body is not valid JSON" in bad_body
    empty_path = _text(client.post("/console/explain/", {"endpoint": "cart-view", "path_cart_id": ""}))
    assert "Answer: 400" in empty_path
