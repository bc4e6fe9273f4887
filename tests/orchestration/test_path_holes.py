"""A path hole whose value is null, empty, ``.`` or ``..`` fails the request with 400
before any call of its stage is sent: ``/carts/{{ request.body.cartId }}`` with ``""``
must never call ``/carts/`` (the collection)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orchestration.errors import BadRequest, ErrorCode
from orchestration.executor import Success
from orchestration.templates import EmptyPathSegment, compile_path_template
from tests.orchestration.engine_kit import Gateway, call, endpoint, reply, service


@pytest.mark.parametrize("value", [None, "", ".", ".."])
def test_a_path_hole_with_no_segment_value_fails_before_any_call(value, clock, downstream, request_context):
    context = dataclasses.replace(request_context, body={"cartId": value})
    ep = endpoint(
        call("cart", path="/carts/{{ request.body.cartId }}"),
        call("profile", path="/users/{{ user.sub }}"),  # a good call of the same stage: not sent either
    )
    gateway = Gateway([service("cart"), service("profile")], downstream, clock)
    with pytest.raises(BadRequest) as refused:
        gateway.executor.run(ep, context)
    shown = f"'{value}'" if value else "null or empty"
    assert refused.value.message == f"Call 'cart' cannot be made: a value in its path is {shown}"
    assert (refused.value.status, refused.value.code) == (400, ErrorCode.BAD_REQUEST)
    assert downstream.hits == {}


def test_a_later_stage_is_rendered_whole_before_it_starts(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"owner": ""}))
    ep = endpoint(
        call("cart"),
        call("prices", stage=2),
        call("owner", stage=2, path="/owners/{{ cart.owner }}"),
        call("tax", stage=3),
    )
    gateway = Gateway([service(n) for n in ("cart", "prices", "owner", "tax")], downstream, clock)
    with pytest.raises(BadRequest, match="Call 'owner'"):
        gateway.executor.run(ep, request_context)
    assert downstream.hits == {"cart": 1}  # stage 1 ran; nothing of stage 2 or 3 was sent


@pytest.mark.parametrize("value", ["0", "a.b", "...", " ", "false", "-"])
def test_other_values_are_sent_as_one_encoded_segment(value, clock, downstream, request_context):
    context = dataclasses.replace(request_context, body={"cartId": value})
    gateway = Gateway([service("cart")], downstream, clock)
    result = gateway.executor.run(endpoint(call("cart", path="/carts/{{ request.body.cartId }}/items")), context)
    assert isinstance(result, Success)
    assert downstream.hits == {"cart": 1}


@pytest.mark.parametrize(
    ("source", "value"),
    [("/carts/{{ id }}", None), ("/carts/{{ id }}", ""), ("/carts/v{{ id }}", ".."), ("{{ id }}", ".")],
)
def test_rendering_a_path_hole_with_no_segment_value_raises(source: str, value: Any) -> None:
    with pytest.raises(EmptyPathSegment):
        compile_path_template(source).render({"id": value})
