"""when, for_each + max_parallel, the per-call cache and in-flight dedupe, in the engine.

MockTransport downstreams counting hits, a fake clock for the cache's TTL;
threads where parallelism is the point.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from orchestration.call_cache import CallCache
from orchestration.clock import FakeClock
from orchestration.context import RequestContext
from orchestration.downstream import DownstreamPool
from orchestration.edge.cache_store import InProcessCacheStore
from orchestration.errors import BadRequest, Failure, FailureKind, failure_to_error
from orchestration.executor import Executor, Success
from orchestration.outcome import OutcomeKind
from orchestration.plan import BreakerPolicy, CallCachePolicy, DownstreamAuth, RetryPolicy, Service
from orchestration.spawn import InlineSpawner, Spawner, ThreadSpawner
from orchestration.templates import compile_template
from tests.orchestration.engine_kit import FakeDownstream, Recorder, call, endpoint, plan, reply, service


class Kit:
    def __init__(
        self,
        services: list[Service],
        downstream: FakeDownstream,
        clock: FakeClock,
        *,
        spawner: Spawner | None = None,
        max_fan_out: int = 100,
        store: InProcessCacheStore | None = None,
    ) -> None:
        self.recorder = Recorder()
        self.store = store or InProcessCacheStore(clock=clock.wall)
        the_plan = plan(services)
        pool = DownstreamPool(
            the_plan.services, downstream.transport_for, observer=self.recorder, clock=clock, environ={}
        )
        self.executor = Executor(
            the_plan,
            pool,
            clock=clock,
            observer=self.recorder,
            spawner=spawner or ThreadSpawner(),
            call_cache=CallCache(self.store, clock=clock.wall),
            max_fan_out=max_fan_out,
        )


def when(source: str) -> Any:
    return compile_template(source)


CART = {"items": [{"sku": "a"}, {"sku": "b"}, {"sku": "c"}]}


def product_reply(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"sku": request.url.path.rsplit("/", 1)[1], "at": request.url.params.get("i")})


# --- when ---------------------------------------------------------------------------------


def test_a_call_whose_when_is_false_makes_no_request_and_takes_its_fallback(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": []}))
    recs = call("recs", stage=2, required=False, fallback=["none"], when=when("{{ length(cart.items) > `0` }}"))
    kit = Kit([service("cart"), service("recs")], downstream, clock)
    result = kit.executor.run(endpoint(call("cart"), recs), request_context)
    assert result == Success({"cart": {"items": []}, "recs": ["none"]}, False, ())  # not partial
    assert downstream.hits["recs"] == 0
    assert [a.call_id for a in kit.recorder.attempts] == ["cart"]  # neither success nor failure: no attempt


def test_a_call_whose_when_is_true_is_made(clock, downstream, request_context):
    downstream.on("cart", reply(200, CART))
    recs = call("recs", stage=2, required=False, when=when("{{ length(cart.items) > `0` }}"))
    result = Kit([service("cart"), service("recs")], downstream, clock).executor.run(
        endpoint(call("cart"), recs), request_context
    )
    assert isinstance(result, Success) and result.body["recs"] == {"service": "recs"}
    assert downstream.hits["recs"] == 1


@pytest.mark.parametrize(("value", "made"), [(0, True), ("x", True), ("", False), ([], False), ({}, False)])
def test_when_uses_jmespath_truthiness(clock, downstream, request_context, value, made):
    downstream.on("cart", reply(200, {"v": value}))
    kit = Kit([service("cart"), service("other")], downstream, clock)
    kit.executor.run(endpoint(call("cart"), call("other", stage=2, when=when("{{ cart.v }}"))), request_context)
    assert downstream.hits["other"] == int(made)


def test_a_skipped_required_call_is_null_and_not_a_failure(clock, downstream, request_context):
    kit = Kit([service("a")], downstream, clock)
    result = kit.executor.run(endpoint(call("a", when=when("{{ request.query.missing }}"))), request_context)
    assert result == Success({"a": None}, False, ())


# --- for_each -----------------------------------------------------------------------------


def products_call(**options: Any) -> Any:
    options.setdefault("for_each", when("{{ cart.items }}"))
    options.setdefault("query", {"i": "{{ index }}"})
    return call("products", "catalog", stage=2, path="/products/{{ item.sku }}", **options)


def test_for_each_makes_one_request_per_element_and_answers_in_element_order(downstream, request_context):
    downstream.on("cart", reply(200, {"items": [{"sku": s} for s in "abcdef"]}))

    def slower_first(request: httpx.Request) -> httpx.Response:
        time.sleep(0.01 * (6 - int(request.url.params["i"])))  # the first element answers last
        return product_reply(request)

    downstream.on("catalog", slower_first)
    kit = Kit([service("cart"), service("catalog")], downstream, FakeClock())
    result = kit.executor.run(endpoint(call("cart"), products_call()), request_context)
    assert isinstance(result, Success) and not result.partial
    assert result.body["products"] == [{"sku": s, "at": str(i)} for i, s in enumerate("abcdef")]
    assert sorted(r.url.path for r in downstream.requests_to("catalog")) == [f"/products/{s}" for s in "abcdef"]
    assert {a.call_id for a in kit.recorder.attempts if a.service == "catalog"} == {"products"}  # bounded labels
    assert len([a for a in kit.recorder.attempts if a.service == "catalog"]) == 6


def test_max_parallel_bounds_the_requests_in_flight(downstream, request_context):
    downstream.on("cart", reply(200, {"items": [{"sku": str(n)} for n in range(8)]}))
    lock, in_flight, peak = threading.Lock(), [0], [0]

    def counting(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.03)
        with lock:
            in_flight[0] -= 1
        return product_reply(request)

    downstream.on("catalog", counting)
    kit = Kit([service("cart"), service("catalog")], downstream, FakeClock())
    result = kit.executor.run(endpoint(call("cart"), products_call(max_parallel=3)), request_context)
    assert isinstance(result, Success) and len(result.body["products"]) == 8
    assert peak[0] == 3


def test_an_empty_list_makes_no_request(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": []}))
    kit = Kit([service("cart"), service("catalog")], downstream, clock)
    result = kit.executor.run(endpoint(call("cart"), products_call()), request_context)
    assert result == Success({"cart": {"items": []}, "products": []}, False, ())
    assert downstream.hits["catalog"] == 0


def test_a_required_element_failure_fails_the_call_and_starts_no_more_elements(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": [{"sku": s} for s in "abcde"]}))
    downstream.on("catalog", lambda r: httpx.Response(404 if r.url.path.endswith("/b") else 200, json={}))
    kit = Kit([service("cart"), service("catalog")], downstream, clock)
    result = kit.executor.run(endpoint(call("cart"), products_call(max_parallel=1)), request_context)
    assert isinstance(result, Failure)
    error = failure_to_error(result)
    assert (error.status, str(error.code), error.failed_services) == (404, "DOWNSTREAM_CLIENT_ERROR", ("catalog",))
    assert [r.url.path for r in downstream.requests_to("catalog")] == ["/products/a", "/products/b"]


def test_an_optional_element_failure_is_null_and_the_response_is_partial(clock, downstream, request_context):
    downstream.on("cart", reply(200, CART))
    downstream.on("catalog", lambda r: httpx.Response(503) if r.url.path.endswith("/b") else product_reply(r))
    kit = Kit([service("cart"), service("catalog")], downstream, clock)
    result = kit.executor.run(endpoint(call("cart"), products_call(required=False)), request_context)
    assert isinstance(result, Success)
    assert result.body["products"] == [{"sku": "a", "at": "0"}, None, {"sku": "c", "at": "2"}]
    assert (result.partial, result.failed_services) == (True, ("catalog",))


@pytest.mark.parametrize("value", [{"sku": "a"}, "abc", None, 3])
def test_a_for_each_over_something_not_a_list_fails_the_call_without_a_request(
    clock, downstream, request_context, value
):
    downstream.on("cart", reply(200, {"items": value}))
    kit = Kit([service("cart"), service("catalog")], downstream, clock)
    required = kit.executor.run(endpoint(call("cart"), products_call()), request_context)
    assert isinstance(required, Failure) and required.required[0].kind is FailureKind.FAILURE
    assert str(failure_to_error(required).code) == "DOWNSTREAM_FAILURE"
    optional = kit.executor.run(endpoint(call("cart"), products_call(required=False, fallback=[])), request_context)
    assert isinstance(optional, Success) and optional.body["products"] == []
    assert (optional.partial, optional.failed_services) == (True, ("catalog",))
    assert downstream.hits["catalog"] == 0


def test_a_list_over_the_fan_out_limit_fails_the_call(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": [{"sku": str(n)} for n in range(10_000)]}))
    kit = Kit([service("cart"), service("catalog")], downstream, clock, max_fan_out=100)
    result = kit.executor.run(endpoint(call("cart"), products_call()), request_context)
    assert isinstance(result, Failure) and downstream.hits["catalog"] == 0


def test_an_element_with_an_empty_path_hole_is_a_400_with_nothing_sent(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": [{"sku": "a"}, {"name": "no sku"}]}))
    kit = Kit([service("cart"), service("catalog"), service("other")], downstream, clock)
    with pytest.raises(BadRequest, match="Call 'products' cannot be made"):
        kit.executor.run(endpoint(call("cart"), products_call(), call("other", stage=2)), request_context)
    assert downstream.hits["catalog"] == downstream.hits["other"] == 0


def test_each_element_is_retried_on_its_own(clock, downstream, request_context):
    downstream.on("cart", reply(200, CART))
    seen: dict[str, int] = {}

    def first_try_fails(request: httpx.Request) -> httpx.Response:
        seen[request.url.path] = seen.get(request.url.path, 0) + 1
        return httpx.Response(503) if seen[request.url.path] == 1 else product_reply(request)

    downstream.on("catalog", first_try_fails)
    retry = RetryPolicy(max_retries=1, backoff="none")
    kit = Kit([service("cart"), service("catalog", retry=retry)], downstream, clock, spawner=InlineSpawner())
    result = kit.executor.run(endpoint(call("cart"), products_call()), request_context)
    assert isinstance(result, Success) and [p["sku"] for p in result.body["products"]] == ["a", "b", "c"]
    assert seen == {"/products/a": 2, "/products/b": 2, "/products/c": 2}
    numbers = [(a.attempt, a.kind) for a in kit.recorder.attempts if a.service == "catalog"]
    assert numbers == [(1, OutcomeKind.BAD_STATUS), (2, OutcomeKind.OK)] * 3


def test_failing_elements_open_the_services_breaker(clock, downstream, request_context):
    downstream.on("cart", reply(200, {"items": [{"sku": s} for s in "abcdef"]}))
    downstream.on("catalog", reply(500))
    breaker = BreakerPolicy(failure_threshold=3, window_s=60, open_s=30)
    kit = Kit([service("cart"), service("catalog", breaker=breaker)], downstream, clock)
    ep = endpoint(call("cart"), products_call(required=False, max_parallel=1))
    result = kit.executor.run(ep, request_context)
    assert isinstance(result, Success) and result.body["products"] == [None] * 6
    assert downstream.hits["catalog"] == 3  # the breaker opened after three failed elements
    kinds = [a.kind for a in kit.recorder.attempts if a.service == "catalog"]
    assert kinds == [OutcomeKind.BAD_STATUS] * 3 + [OutcomeKind.CIRCUIT_OPEN] * 3


# --- per-call cache -----------------------------------------------------------------------


def cached_call(ttl_s: int = 30, tags: tuple[str, ...] = (), **options: Any) -> Any:
    policy = CallCachePolicy(ttl_s, tuple(compile_template(t) for t in tags))
    return call("catalog", path="/catalog/{{ request.query.include }}", cache=policy, **options)


def test_a_cached_call_answer_is_reused_until_its_ttl_passes(clock, downstream, request_context):
    downstream.on("catalog", reply(200, {"n": 1}))
    kit = Kit([service("catalog")], downstream, clock)
    ep = endpoint(cached_call(ttl_s=30))
    for _ in range(3):
        assert kit.executor.run(ep, request_context) == Success({"catalog": {"n": 1}}, False, ())
    assert downstream.hits["catalog"] == 1
    assert len(kit.recorder.attempts) == 1  # a hit is no attempt
    clock.advance(31)
    kit.executor.run(ep, request_context)
    assert downstream.hits["catalog"] == 2


def test_the_cache_key_is_the_rendered_request(clock, downstream, request_context):
    kit = Kit([service("catalog")], downstream, clock)
    ep = endpoint(cached_call())
    kit.executor.run(ep, request_context)
    kit.executor.run(ep, replace(request_context, query={"include": "other"}))
    kit.executor.run(ep, request_context)
    assert [r.url.path for r in downstream.requests] == ["/catalog/items", "/catalog/other"]


def test_failures_are_never_stored(clock, downstream, request_context):
    answers = iter([httpx.Response(500), httpx.Response(200, json={"n": 2}), httpx.Response(500)])
    downstream.on("catalog", lambda r: next(answers))
    kit = Kit([service("catalog")], downstream, clock)
    ep = endpoint(cached_call(required=False))
    first = kit.executor.run(ep, request_context)
    assert isinstance(first, Success) and (first.body["catalog"], first.partial) == (None, True)
    assert kit.executor.run(ep, request_context) == Success({"catalog": {"n": 2}}, False, ())
    assert kit.executor.run(ep, request_context) == Success({"catalog": {"n": 2}}, False, ())
    assert downstream.hits["catalog"] == 2


def test_a_call_forwarding_client_credentials_is_cached_per_credential(clock, downstream, request_context):
    downstream.on("catalog", lambda r: httpx.Response(200, json={"who": r.headers["authorization"]}))
    kit = Kit([service("catalog", auth=DownstreamAuth(type="bearer_forward"))], downstream, clock)
    ep = endpoint(cached_call())
    other = replace(request_context, authorization="Bearer someone-else")
    first = kit.executor.run(ep, request_context)
    second = kit.executor.run(ep, other)
    assert isinstance(first, Success) and first.body == {"catalog": {"who": "Bearer client-token"}}
    assert isinstance(second, Success) and second.body == {"catalog": {"who": "Bearer someone-else"}}
    kit.executor.run(ep, other)
    assert downstream.hits["catalog"] == 2


def test_a_tag_purge_deletes_the_cached_answers(clock, downstream, request_context):
    kit = Kit([service("catalog")], downstream, clock)
    ep = endpoint(cached_call(tags=("catalog", "include:{{ request.query.include }}")))
    kit.executor.run(ep, request_context)
    kit.executor.run(ep, request_context)
    assert kit.store.purge(("include:items",)) == 1
    kit.executor.run(ep, request_context)
    assert downstream.hits["catalog"] == 2


def test_each_for_each_element_is_cached_on_its_own(clock, downstream, request_context):
    downstream.on("cart", reply(200, CART))
    downstream.on("catalog", product_reply)
    kit = Kit([service("cart"), service("catalog")], downstream, clock)
    policy = CallCachePolicy(60, (compile_template("product:{{ item.sku }}"),))
    ep = endpoint(call("cart"), products_call(cache=policy, query={}))
    kit.executor.run(ep, request_context)
    kit.store.purge(("product:b",))
    result = kit.executor.run(ep, request_context)
    assert isinstance(result, Success) and [p["sku"] for p in result.body["products"]] == ["a", "b", "c"]
    paths = sorted(r.url.path for r in downstream.requests_to("catalog"))
    assert paths == ["/products/a", "/products/b", "/products/b", "/products/c"]


# --- dedupe -------------------------------------------------------------------------------


def run_concurrently(kit: Kit, ep: Any, context: RequestContext, clients: int) -> list[Any]:
    results: list[Any] = [None] * clients
    start = threading.Barrier(clients)

    def client(n: int) -> None:
        start.wait()
        results[n] = kit.executor.run(ep, context)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def slow(status: int, body: Any = None) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        time.sleep(0.2)
        return httpx.Response(status, json=body)

    return handle


@pytest.mark.parametrize(("dedupe", "hits"), [(True, 1), (False, 30)])
def test_identical_requests_in_flight_are_sent_once_with_dedupe(downstream, request_context, dedupe, hits):
    downstream.on("catalog", slow(200, {"n": 1}))
    kit = Kit([service("catalog", dedupe=dedupe)], downstream, FakeClock())
    results = run_concurrently(kit, endpoint(call("catalog")), request_context, 30)
    assert all(result == Success({"catalog": {"n": 1}}, False, ()) for result in results)
    assert downstream.hits["catalog"] == hits


def test_a_deduped_failure_is_shared_and_not_retried_by_the_followers(downstream, request_context):
    downstream.on("catalog", slow(503))
    retry = RetryPolicy(max_retries=1, backoff="none")
    kit = Kit([service("catalog", dedupe=True, retry=retry)], downstream, FakeClock())
    results = run_concurrently(kit, endpoint(call("catalog")), request_context, 20)
    assert all(isinstance(result, Failure) for result in results)
    assert downstream.hits["catalog"] == 2  # the leader's try and its one retry


def test_dedupe_leaves_unsafe_calls_alone(downstream, request_context):
    downstream.on("catalog", slow(200, {}))
    kit = Kit([service("catalog", dedupe=True)], downstream, FakeClock())
    run_concurrently(kit, endpoint(call("catalog", method="POST", body={"a": 1})), request_context, 5)
    assert downstream.hits["catalog"] == 5
