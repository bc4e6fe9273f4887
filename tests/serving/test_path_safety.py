"""Paths through the real registry, compiler and engine, against a fake service on
loopback: a path hole with no segment value is a 400 before any call, and a client
path with a ``.`` or ``..`` segment is a 404; neither reaches the service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.serving.test_serving_view import assert_envelope
from tests.support.configured import configured
from tests.support.fake_downstream import FakeDownstream, start_fake_downstream, stop_fake_downstream


def _call(call_id: str, path: str, stage: int = 1) -> dict[str, Any]:
    return {"id": call_id, "service": "shop", "stage": stage, "method": "GET", "path": path}


def document(base_url: str) -> dict[str, Any]:
    def endpoint(name: str, method: str, path: str, *calls: dict[str, Any]) -> dict[str, Any]:
        response = {call["id"]: "{{ " + call["id"] + " }}" for call in calls}
        return {"name": name, "method": method, "path": path, "calls": list(calls), "response": response}

    return {
        "version": 1,
        "layer": {"name": "Path safety", "base_path": "/v1/safe", "auth": {"type": "none"}},
        "services": {"shop": {"base_url": base_url, "timeout_ms": 1000}},
        "endpoints": [
            endpoint(
                "cart-by-body",
                "POST",
                "/cart",
                _call("cart", "/carts/{{ request.body.cartId }}"),
                _call("stock", "/stock"),  # same stage, a fine path: not sent either
            ),
            endpoint(
                "owner",
                "GET",
                "/carts/{cart_id}/owner",
                _call("cart", "/carts/{{ request.path.cart_id }}"),
                _call("owner", "/users/{{ cart.owner }}", stage=2),
                _call("stock", "/stock", stage=2),
            ),
            endpoint("cart-view", "GET", "/carts/{cart_id}", _call("cart", "/carts/{{ request.path.cart_id }}")),
        ],
    }


@pytest.fixture
def shop(db: None) -> Iterator[FakeDownstream]:
    fake = start_fake_downstream({"*": (200, {"owner": ""}), "/stock": (200, {"units": 3})})
    try:
        with configured(document(fake.url), "shop"):
            yield fake
    finally:
        stop_fake_downstream(fake)


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "null or empty"), ("", "null or empty"), (".", "'.'"), ("..", "'..'")]
)
def test_a_path_hole_with_no_segment_value_is_a_400_before_any_call(
    shop: FakeDownstream, value: Any, shown: str
) -> None:
    response = Client().post("/v1/safe/cart", {"cartId": value}, content_type="application/json")
    body = assert_envelope(response, 400, "BAD_REQUEST")
    assert body["error"]["message"] == f"Call 'cart' cannot be made: a value in its path is {shown}"
    assert response["Cache-Control"] == "no-store"
    assert sum(shop.hits.values()) == 0


def test_a_later_stage_with_an_empty_path_value_sends_none_of_its_calls(shop: FakeDownstream) -> None:
    response = Client().get("/v1/safe/carts/c-1/owner")
    body = assert_envelope(response, 400, "BAD_REQUEST")
    assert body["error"]["message"] == "Call 'owner' cannot be made: a value in its path is null or empty"
    assert dict(shop.hits) == {"/carts/c-1": 1}  # stage 1 only: neither /users/ nor /stock


def test_good_values_are_served(shop: FakeDownstream) -> None:
    response = Client().post("/v1/safe/cart", {"cartId": "c.1"}, content_type="application/json")
    assert (response.status_code, response.json()) == (200, {"cart": {"owner": ""}, "stock": {"units": 3}})
    assert dict(shop.hits) == {"/carts/c%2E1": 1, "/stock": 1}


@pytest.mark.parametrize(
    "path",
    ["/v1/safe/carts/..", "/v1/safe/carts/.", "/v1/safe/carts/%2e%2E", "/v1/safe/carts/%2E", "/v1/safe/./carts/c-1"],
)
def test_a_client_path_with_a_dot_segment_matches_no_endpoint(shop: FakeDownstream, path: str) -> None:
    assert_envelope(Client().get(path), 404, "NOT_FOUND")
    assert sum(shop.hits.values()) == 0
