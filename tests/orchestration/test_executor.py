"""The executor: stages, parallelism, cancellation, deadlines, fallbacks, templates."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from urllib.parse import unquote

import httpx
import pytest

from orchestration.clock import FakeClock
from orchestration.errors import Abandoned, Failure, FailureKind, failure_to_error
from orchestration.executor import Success
from orchestration.outcome import OutcomeKind
from orchestration.spawn import InlineSpawner, ThreadSpawner
from tests.orchestration.engine_kit import Gateway, StuckReply, call, endpoint, reply, service, slow_reply


def test_stages_run_in_order_and_later_stages_see_earlier_results(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"id": "c-1", "items": [{"sku": "a"}, {"sku": "b"}]}))
    downstream.on("pricing", lambda r: httpx.Response(200, json={"got": json.loads(r.content)}))
    ep = endpoint(
        call("cart", path="/carts/{{ request.body.cartId }}"),
        call("pricing", stage=2, method="POST", path="/quote", body={"skus": "{{ cart.items[].sku }}"}),
        response={"quote": "{{ pricing.got }}", "cart": "{{ cart.id }}"},
    )
    result = Gateway([service("cart"), service("pricing")], downstream, clock).executor.run(ep, request_context)
    assert result == Success({"quote": {"skus": ["a", "b"]}, "cart": "c-1"}, False, ())
    assert [r.url.path for r in downstream.requests] == ["/carts/c-1", "/quote"]


def test_calls_of_one_stage_run_in_parallel(downstream, request_context):
    all_in_flight = threading.Barrier(3, timeout=5)  # passed only by three calls running at once

    def meet(request: httpx.Request) -> httpx.Response:
        all_in_flight.wait()
        return httpx.Response(200, json={"ok": True})

    for name in ("a", "b", "c"):
        downstream.on(name, meet)
    gateway = Gateway([service(n) for n in "abc"], downstream, FakeClock(), spawner=ThreadSpawner())
    result = gateway.executor.run(endpoint(call("a"), call("b"), call("c")), request_context)
    assert isinstance(result, Success) and result.body == {n: {"ok": True} for n in "abc"}
    assert not all_in_flight.broken  # one after another, the first call would have waited in vain


def test_a_stage_starts_only_when_the_previous_one_is_done(downstream, request_context):
    finished: list[str] = []

    def slow_a(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)
        finished.append("a")
        return httpx.Response(200, json={})

    def b(request: httpx.Request) -> httpx.Response:
        finished.append(f"b after {list(finished)}")
        return httpx.Response(200, json={})

    downstream.on("a", slow_a)
    downstream.on("b", b)
    gateway = Gateway([service("a"), service("b"), service("x")], downstream, FakeClock())
    gateway.executor.run(endpoint(call("a"), call("x"), call("b", stage=2)), request_context)
    assert finished == ["a", "b after ['a']"]


def test_a_required_failure_starts_no_later_stage(clock, downstream, request_context):
    downstream.on("cart", reply(500))
    gateway = Gateway([service("cart"), service("pricing"), service("tax")], downstream, clock)
    ep = endpoint(call("cart"), call("pricing", stage=2), call("tax", stage=3))
    result = gateway.executor.run(ep, request_context)
    assert isinstance(result, Failure)
    assert downstream.hits == {"cart": 1}


def test_a_required_failure_cancels_the_calls_still_running(downstream, request_context):
    stuck = StuckReply()
    downstream.on("slow", stuck)
    downstream.on("bad", reply(503))
    gateway = Gateway([service("slow"), service("bad"), service("later")], downstream, FakeClock())
    result = gateway.executor.run(endpoint(call("slow"), call("bad"), call("later", stage=2)), request_context)
    waited_for_the_stuck_call = stuck.answered.is_set()
    stuck.release.set()
    assert isinstance(result, Failure)
    assert failure_to_error(result).status == 502
    assert result.failed_services == ("bad",)  # the cancelled call is not reported as failed
    assert not waited_for_the_stuck_call
    assert downstream.hits["later"] == 0


def test_a_request_whose_client_is_gone_finishes_the_stage_under_way_and_starts_no_other(downstream, request_context):
    gone = threading.Event()

    def cart_answered_after_the_client_left(request: httpx.Request) -> httpx.Response:
        gone.set()  # the client hangs up while its first stage runs
        return httpx.Response(200, json={"id": "c-1"})

    downstream.on("cart", cart_answered_after_the_client_left)
    gateway = Gateway([service("cart"), service("pricing"), service("tax")], downstream, FakeClock())
    ep = endpoint(call("cart"), call("pricing", stage=2), call("tax", stage=3))
    context = dataclasses.replace(request_context, client_gone=gone.is_set)
    with pytest.raises(Abandoned):
        gateway.executor.run(ep, context)
    assert downstream.hits == {"cart": 1}  # the call under way finished; no later stage was sent
    assert [a.kind for a in gateway.recorder.attempts] == [OutcomeKind.OK]


def test_the_deadline_passing_makes_remaining_required_calls_time_out(downstream, request_context):
    stuck = StuckReply()
    downstream.on("slow", stuck)
    gateway = Gateway([service("slow", timeout_ms=5000), service("fast"), service("next")], downstream, _RealClock())
    ep = endpoint(call("slow"), call("fast"), call("next", stage=2), timeout_ms=150)
    started = time.perf_counter()
    result = gateway.executor.run(ep, request_context)
    elapsed = time.perf_counter() - started
    waited_for_the_stuck_call = stuck.answered.is_set()
    stuck.release.set()
    assert isinstance(result, Failure)
    assert [f.kind for f in result.required] == [FailureKind.TIMEOUT]
    assert failure_to_error(result).status == 504
    assert elapsed > 0.1  # the deadline (150 ms) was waited for
    assert not waited_for_the_stuck_call
    assert downstream.hits["next"] == 0


def test_the_deadline_bounds_a_later_stage(clock: FakeClock, downstream, request_context):
    downstream.on("first", slow_reply(clock, 1.0))  # eats the whole budget
    gateway = Gateway([service("first", timeout_ms=5000), service("second")], downstream, clock)
    result = gateway.executor.run(endpoint(call("first"), call("second", stage=2), timeout_ms=1000), request_context)
    assert isinstance(result, Failure)
    assert failure_to_error(result).status == 504
    assert downstream.hits["second"] == 0


def test_an_attempt_timeout_never_exceeds_the_remaining_deadline(clock: FakeClock, downstream, request_context):
    seen: list[float] = []

    def record_timeout(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        clock.advance(0.3)
        return httpx.Response(200, json={})

    downstream.on("a", record_timeout)
    downstream.on("b", record_timeout)
    gateway = Gateway([service("a", timeout_ms=2000), service("b", timeout_ms=2000)], downstream, clock)
    gateway.executor.run(endpoint(call("a", timeout_ms=400), call("b", stage=2), timeout_ms=1000), request_context)
    assert seen == pytest.approx([0.4, 0.7])


def test_optional_timeout_at_the_deadline_falls_back(downstream, request_context):
    stuck = StuckReply()
    downstream.on("recs", stuck)
    gateway = Gateway([service("recs", timeout_ms=5000), service("cart")], downstream, _RealClock())
    ep = endpoint(call("cart"), call("recs", required=False, fallback={"items": []}), timeout_ms=100)
    result = gateway.executor.run(ep, request_context)
    stuck.release.set()
    assert isinstance(result, Success)
    assert result.body["recs"] == {"items": []}
    assert result.failed_services == ("recs",)


def test_each_fallback_kind_stands_in_for_a_failed_optional_call(clock, downstream, request_context):
    for name in ("n", "o", "l"):
        downstream.on(name, reply(500))
    ep = endpoint(
        call("n", required=False, fallback=None),
        call("o", required=False, fallback={"tier": "basic"}),
        call("l", required=False, fallback=[1, 2]),
        call("uses", stage=2, query={"tier": "{{ o.tier }}", "count": "{{ length(l) }}"}),
        response={"n": "{{ n }}", "o": "{{ o }}", "l": "{{ l }}"},
    )
    gateway = Gateway([service(n) for n in ("n", "o", "l", "uses")], downstream, clock)
    result = gateway.executor.run(ep, request_context)
    assert isinstance(result, Success)
    assert result.body == {
        "n": None,
        "o": {"tier": "basic"},
        "l": [1, 2],
        "partialData": True,
        "failedServices": ["n", "o", "l"],
    }
    assert downstream.requests_to("uses")[0].url.query == b"tier=basic&count=2"


def test_a_fallback_is_not_shared_between_requests(clock, downstream, request_context):
    downstream.on("o", reply(500))
    gateway = Gateway([service("o")], downstream, clock)
    ep = endpoint(call("o", required=False, fallback={"list": []}))
    first = gateway.executor.run(ep, request_context)
    assert isinstance(first, Success)
    first.body["o"]["list"].append("mutated")
    second = gateway.executor.run(ep, request_context)
    assert isinstance(second, Success) and second.body["o"] == {"list": []}


def test_missing_fields_render_null_and_null_query_values_are_left_out(clock, downstream, request_context):
    ep = endpoint(
        call("cart", query={"include": "{{ request.query.include }}", "absent": "{{ request.query.nope }}"}),
        response={"missing": "{{ cart.no.such.field }}", "sum": "{{ sum(cart.none) }}", "text": "id={{ cart.x }}"},
    )
    result = Gateway([service("cart")], downstream, clock).executor.run(ep, request_context)
    assert result == Success({"missing": None, "sum": None, "text": "id="}, False, ())
    assert downstream.requests[0].url.query == b"include=items"


def test_path_values_are_encoded_as_one_segment(clock, downstream, request_context):
    ctx = request_context.__class__(method="GET", body={"cartId": "../x?y#z"}, request_id="r")
    ep = endpoint(call("cart", path="/carts/{{ request.body.cartId }}/items"))
    Gateway([service("cart")], downstream, clock).executor.run(ep, ctx)
    sent = downstream.requests[0].url
    assert sent.raw_path == b"/carts/%2E%2E%2Fx%3Fy%23z/items"
    assert sent.query == b""
    assert sent.fragment == ""
    assert unquote(sent.raw_path.decode().split("/")[2]) == "../x?y#z"


def test_query_params_are_merged_with_a_query_in_the_configured_path(clock, downstream, request_context):
    ep = endpoint(call("cart", path="/search?fields=id", query={"q": "{{ user.sub }}", "tags": ["a", "b"]}))
    Gateway([service("cart")], downstream, clock).executor.run(ep, request_context)
    assert downstream.requests[0].url.query == b"fields=id&q=u-7&tags=a&tags=b"


def test_request_id_is_sent_and_client_headers_are_not(clock, downstream, request_context):
    ep = endpoint(call("cart", headers={"X-Channel": '{{ request.headers."x-channel" }}', "Host": "evil"}))
    Gateway([service("cart")], downstream, clock).executor.run(ep, request_context)
    headers = downstream.requests[0].headers
    assert headers["X-Request-ID"] == "req-123"
    assert headers["X-Channel"] == "mobile"
    assert headers["host"] == "cart.test"
    assert "authorization" not in headers


def test_every_attempt_is_observed(clock, downstream, request_context):
    downstream.on("cart", reply(200, {}))
    downstream.on("recs", reply(404))
    gateway = Gateway([service("cart"), service("recs")], downstream, clock, spawner=InlineSpawner())
    gateway.executor.run(endpoint(call("cart"), call("recs", required=False)), request_context)
    seen = sorted((a.service, a.call_id, a.attempt, str(a.kind), a.status) for a in gateway.recorder.attempts)
    assert seen == [("cart", "cart", 1, "ok", 200), ("recs", "recs", 1, "bad_status", 404)]


def test_the_result_is_json_serialisable(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"a": [1.5, True, None, {"b": "é"}]}))
    result = Gateway([service("cart")], downstream, clock).executor.run(endpoint(call("cart")), request_context)
    assert isinstance(result, Success)
    assert json.loads(json.dumps(result.body, allow_nan=False)) == {"cart": {"a": [1.5, True, None, {"b": "é"}]}}


def test_spawned_calls_keep_the_callers_contextvars(downstream, request_context):
    import contextvars

    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="lost")
    seen: list[str] = []
    downstream.on("a", lambda r: (seen.append(marker.get()), httpx.Response(200, json={}))[1])
    downstream.on("b", lambda r: (seen.append(marker.get()), httpx.Response(200, json={}))[1])
    marker.set("span-1")
    Gateway([service("a"), service("b")], downstream, FakeClock()).executor.run(
        endpoint(call("a"), call("b")), request_context
    )
    assert seen == ["span-1", "span-1"]


class _RealClock(FakeClock):
    """Real time, for the few tests that wait on threads."""

    def monotonic(self) -> float:
        return time.monotonic()
