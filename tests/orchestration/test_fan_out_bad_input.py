"""Issue 18, bad input: a for_each that is not a list, or longer than GATEWAY_MAX_FAN_OUT,
fails its call with a located reason the client reads (never a 500, never a request)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestration.errors import Failure, FailureKind, RequiredFailure, failure_to_error
from orchestration.executor import Success
from tests.orchestration.engine_kit import call, endpoint, reply, service
from tests.orchestration.test_composition import Kit, products_call


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        ({"sku": "a"}, "call 'products': for_each gave an object, not a list"),
        ("abc", "call 'products': for_each gave a string, not a list"),
        (None, "call 'products': for_each gave null, not a list"),
        (3, "call 'products': for_each gave a number, not a list"),
        (True, "call 'products': for_each gave a boolean, not a list"),
        (
            [{"sku": str(n)} for n in range(10_000)],
            "call 'products': for_each gave 10000 elements, over GATEWAY_MAX_FAN_OUT=100",
        ),
    ],
)
def test_a_required_call_fails_with_its_reason_in_the_envelope(
    clock, downstream, request_context, items: Any, reason: str
):
    downstream.on("cart", reply(200, {"items": items}))
    kit = Kit([service("cart"), service("catalog")], downstream, clock, max_fan_out=100)
    result = kit.executor.run(endpoint(call("cart"), products_call()), request_context)
    assert isinstance(result, Failure)
    error = failure_to_error(result)
    assert (error.status, str(error.code), error.message) == (502, "DOWNSTREAM_FAILURE", reason)
    assert error.failed_services == ("catalog",) and downstream.hits["catalog"] == 0


def test_an_optional_call_falls_back_and_the_response_is_partial(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": [{"sku": str(n)} for n in range(101)]}))
    kit = Kit([service("cart"), service("catalog")], downstream, clock, max_fan_out=100)
    optional = products_call(required=False, fallback=[])
    result = kit.executor.run(endpoint(call("cart"), optional), request_context)
    assert isinstance(result, Success) and result.body["products"] == []
    assert (result.partial, result.failed_services) == (True, ("catalog",))
    assert downstream.hits["catalog"] == 0


def test_downstream_failures_keep_the_generic_message():
    # a 5xx's words (kept in logs) are never said to the client: only the gateway's own reasons
    failure = Failure((RequiredFailure("catalog", FailureKind.FAILURE, 503),), ("catalog",))
    assert failure_to_error(failure).message == "One or more services unavailable"


def test_several_reasons_are_all_named():
    failure = Failure(
        (
            RequiredFailure("a", FailureKind.FAILURE, reason="call 'x': for_each gave null, not a list"),
            RequiredFailure("b", FailureKind.FAILURE, 503),
            RequiredFailure("c", FailureKind.FAILURE, reason="call 'y': for_each gave a string, not a list"),
        ),
        ("a", "b", "c"),
    )
    assert failure_to_error(failure).message == (
        "call 'x': for_each gave null, not a list; call 'y': for_each gave a string, not a list"
    )
