"""Contract section 2: every downstream row of the error matrix, and precedence."""

from __future__ import annotations

import httpx
import pytest

from orchestration.clock import FakeClock
from orchestration.context import RequestContext
from orchestration.errors import ErrorCode, Failure, failure_to_error
from orchestration.executor import Success
from orchestration.plan import BreakerPolicy, BulkheadPolicy
from orchestration.spawn import InlineSpawner
from tests.orchestration.engine_kit import Gateway, call, endpoint, reply, service, slow_reply


def _run(gateway: Gateway, ep, ctx: RequestContext) -> Success | Failure:  # type: ignore[no-untyped-def]
    return gateway.executor.run(ep, ctx)


def _error(result: Success | Failure) -> tuple[int, str, list[str], int | None]:
    assert isinstance(result, Failure)
    error = failure_to_error(result)
    return error.status, str(error.code), list(error.failed_services), error.retry_after_s


def test_every_call_succeeds_gives_the_assembled_response(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": [1, 2]}))
    ep = endpoint(call("cart"), response={"items": "{{ cart.items }}", "n": "{{ length(cart.items) }}"})
    result = _run(Gateway([service("cart")], downstream, clock), ep, request_context)
    assert result == Success({"items": [1, 2], "n": 2}, False, ())


def _raise(error: type[httpx.TransportError]):  # type: ignore[no-untyped-def]
    def handle(request: httpx.Request) -> httpx.Response:
        raise error("failed", request=request)

    return handle


@pytest.mark.parametrize(
    "handler",
    [
        reply(500),
        lambda r: httpx.Response(200, content=b"<html>"),
        _raise(httpx.ConnectError),
        _raise(httpx.ReadTimeout),
    ],
    ids=["5xx", "bad-json", "connection", "timeout"],
)
def test_optional_call_failure_gives_200_with_fallback_and_markers(handler, clock, downstream, request_context):
    downstream.on("recs", handler)
    ep = endpoint(call("cart"), call("recs", required=False, fallback=[]))
    result = _run(Gateway([service("cart"), service("recs")], downstream, clock), ep, request_context)
    assert isinstance(result, Success)
    assert result.body == {"cart": {"service": "cart"}, "recs": [], "partialData": True, "failedServices": ["recs"]}
    assert (result.partial, result.failed_services) == (True, ("recs",))


def test_optional_call_with_open_breaker_or_full_bulkhead_falls_back(clock, downstream, request_context):
    recs = service("recs", breaker=BreakerPolicy(failure_threshold=1), bulkhead=BulkheadPolicy(max_concurrent=1))
    promo = service("promo", bulkhead=BulkheadPolicy(max_concurrent=1))
    gateway = Gateway([recs, promo], downstream, clock)
    gateway.pool.breaker("recs").force_open()
    assert gateway.pool.client("promo").bulkhead.try_enter(0)
    ep = endpoint(call("recs", required=False, fallback={"x": 1}), call("promo", required=False))
    result = _run(gateway, ep, request_context)
    assert isinstance(result, Success)
    assert result.body == {"recs": {"x": 1}, "promo": None, "partialData": True, "failedServices": ["recs", "promo"]}
    assert downstream.hits == {}


def test_empty_2xx_body_is_json_null_not_a_failure(clock, downstream, request_context):
    downstream.on("cart", reply(204))
    result = _run(Gateway([service("cart")], downstream, clock), endpoint(call("cart")), request_context)
    assert result == Success({"cart": None}, False, ())


@pytest.mark.parametrize(
    ("status", "expected_status", "code"),
    [
        (401, 401, ErrorCode.DOWNSTREAM_UNAUTHORIZED),
        (403, 403, ErrorCode.DOWNSTREAM_FORBIDDEN),
        (404, 404, ErrorCode.DOWNSTREAM_CLIENT_ERROR),
        (409, 409, ErrorCode.DOWNSTREAM_CLIENT_ERROR),
        (422, 422, ErrorCode.DOWNSTREAM_CLIENT_ERROR),
        (500, 502, ErrorCode.DOWNSTREAM_FAILURE),
        (503, 502, ErrorCode.DOWNSTREAM_FAILURE),
    ],
)
def test_required_call_status_maps_to_the_table(status, expected_status, code, clock, downstream, request_context):
    downstream.on("cart", reply(status, {"error": "x"}))
    result = _run(Gateway([service("cart")], downstream, clock), endpoint(call("cart")), request_context)
    assert _error(result)[:3] == (expected_status, str(code), ["cart"])


def test_required_429_after_retries_passes_retry_after_on(clock, downstream, request_context):
    downstream.on("cart", reply(429, None, {"Retry-After": "7"}))
    result = _run(Gateway([service("cart")], downstream, clock), endpoint(call("cart")), request_context)
    assert _error(result) == (429, "RATE_LIMITED", ["cart"], 7)


def test_required_429_without_retry_after_gets_an_estimate(clock, downstream, request_context):
    downstream.on("cart", reply(429))
    result = _run(Gateway([service("cart")], downstream, clock), endpoint(call("cart")), request_context)
    assert _error(result) == (429, "RATE_LIMITED", ["cart"], 1)


@pytest.mark.parametrize(
    "failure",
    [
        _raise(httpx.ConnectError),
        _raise(httpx.RemoteProtocolError),
        lambda r: httpx.Response(200, content=b"{not json"),
        lambda r: httpx.Response(200, content=b"NaN"),
    ],
    ids=["connection", "broken-stream", "bad-json", "nan-is-not-json"],
)
def test_required_call_failing_otherwise_is_502(failure, clock, downstream, request_context):
    downstream.on("cart", failure)
    result = _run(Gateway([service("cart")], downstream, clock), endpoint(call("cart")), request_context)
    assert _error(result)[:3] == (502, "DOWNSTREAM_FAILURE", ["cart"])


def test_required_call_with_open_breaker_is_502_circuit_open_without_network(clock, downstream, request_context):
    cart = service("cart", breaker=BreakerPolicy(failure_threshold=1, window_s=60, open_s=30))
    gateway = Gateway([cart], downstream, clock)
    downstream.on("cart", reply(500))
    _run(gateway, endpoint(call("cart")), request_context)
    assert downstream.hits["cart"] == 1
    result = _run(gateway, endpoint(call("cart")), request_context)
    assert _error(result)[:3] == (502, "CIRCUIT_OPEN", ["cart"])
    assert downstream.hits["cart"] == 1


def test_required_call_with_full_bulkhead_is_502(clock, downstream, request_context):
    cart = service("cart", bulkhead=BulkheadPolicy(max_concurrent=1, max_wait_ms=0))
    gateway = Gateway([cart], downstream, clock)
    assert gateway.pool.client("cart").bulkhead.try_enter(0)  # another request holds the only slot
    result = _run(gateway, endpoint(call("cart")), request_context)
    assert _error(result)[:3] == (502, "DOWNSTREAM_FAILURE", ["cart"])
    assert downstream.hits["cart"] == 0


def test_required_call_timing_out_is_504(clock: FakeClock, downstream, request_context):
    downstream.on("cart", slow_reply(clock, 0.6))
    result = _run(
        Gateway([service("cart", timeout_ms=500)], downstream, clock), endpoint(call("cart")), request_context
    )
    assert _error(result)[:3] == (504, "GATEWAY_TIMEOUT", ["cart"])


def test_transport_timeout_is_504(clock, downstream, request_context):
    downstream.on("cart", _raise(httpx.ReadTimeout))
    result = _run(Gateway([service("cart")], downstream, clock), endpoint(call("cart")), request_context)
    assert _error(result)[:3] == (504, "GATEWAY_TIMEOUT", ["cart"])


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"a": 504, "b": 500, "c": 404, "d": 429, "e": 401}, 401),
        ({"a": 504, "b": 500, "c": 404, "d": 429, "e": 403}, 403),
        ({"a": 504, "b": 500, "c": 404, "d": 429}, 429),
        ({"a": 504, "b": 500, "c": 404}, 404),
        ({"a": 504, "b": 500}, 502),
    ],
)
def test_precedence_when_several_required_calls_fail(statuses, expected, clock, downstream, request_context):
    for name, status in statuses.items():
        if status == 504:
            downstream.on(name, _raise(httpx.ReadTimeout))
        else:
            downstream.on(name, reply(status))
    names = sorted(statuses)
    gateway = Gateway([service(n) for n in names], downstream, clock, spawner=InlineSpawner())
    result = _run(gateway, endpoint(*(call(n) for n in names)), request_context)
    status, _code, failed, _ = _error(result)
    assert status == expected
    assert failed == names


def test_every_failing_required_call_timed_out_gives_504(clock, downstream, request_context):
    for name in ("a", "b"):
        downstream.on(name, _raise(httpx.ConnectTimeout))
    gateway = Gateway([service("a"), service("b")], downstream, clock, spawner=InlineSpawner())
    result = _run(gateway, endpoint(call("a"), call("b")), request_context)
    assert _error(result)[:3] == (504, "GATEWAY_TIMEOUT", ["a", "b"])


def test_failed_services_are_registry_names_once_in_call_order(clock, downstream, request_context):
    downstream.on("inventory", reply(500))
    calls = [
        call("stock1", "inventory", required=False),
        call("price", "pricing"),
        call("stock2", "inventory", required=False),
    ]
    gateway = Gateway([service("inventory"), service("pricing")], downstream, clock)
    result = _run(gateway, endpoint(*calls), request_context)
    assert isinstance(result, Success)
    assert result.failed_services == ("inventory",)
    assert result.body["failedServices"] == ["inventory"]


def test_4xx_answers_never_open_the_breaker(clock, downstream, request_context):
    downstream.on("cart", reply(404))
    gateway = Gateway([service("cart", breaker=BreakerPolicy(failure_threshold=1))], downstream, clock)
    for _ in range(3):
        assert _error(_run(gateway, endpoint(call("cart")), request_context))[0] == 404
    assert downstream.hits["cart"] == 3
    assert gateway.recorder.transitions == []
