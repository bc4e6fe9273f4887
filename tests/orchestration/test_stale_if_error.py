"""Contract section 7, ``stale_if_error_s``: an optional call's last good result stands in
for its fallback, for the same rendered request only, in-process and through Redis."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from orchestration.context import RequestContext
from orchestration.edge.cache_store import InProcessCacheStore
from orchestration.edge.redis_boundary import RedisBoundary
from orchestration.edge.redis_cache_store import RedisCacheStore
from orchestration.executor import Success
from orchestration.plan import DownstreamAuth
from orchestration.resilience.stale import StaleResults
from tests.orchestration.engine_kit import Gateway, call, endpoint, reply, service
from tests.support.redis import redis_or_skip

StaleFactory = Callable[[], StaleResults]  # a second call: another worker


class _Switch:
    """The shipping service: answers ``{"eta": n}`` (n counts good answers) while up, 503 while down."""

    def __init__(self) -> None:
        self.up = True
        self.good = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            return httpx.Response(503, json={"error": "down"})
        self.good += 1
        return httpx.Response(200, json={"eta": self.good, "q": request.url.params.get("zip")})


def _endpoint(stale_s: int | None = 300):  # type: ignore[no-untyped-def]
    cart = call("cart")
    shipping = call(
        "shipping",
        query={"zip": "{{ request.query.zip }}"},
        required=False,
        fallback={"eta": None},
        stale_if_error_s=stale_s,
    )
    return endpoint(cart, shipping)


def _request(zip_code: str = "75001", authorization: str | None = None) -> RequestContext:
    return RequestContext(method="GET", query={"zip": zip_code}, authorization=authorization)


@pytest.fixture(params=["in_process", "redis"])
def stale_factory(request: pytest.FixtureRequest, clock) -> Iterator[StaleFactory]:  # type: ignore[no-untyped-def]
    if request.param == "in_process":
        store = InProcessCacheStore(clock=clock.wall)
        yield lambda: StaleResults(store, wall=clock.wall)
        return
    client = redis_or_skip()
    prefix = f"test-stale-{uuid.uuid4().hex[:8]}:"
    # each call: a store of another worker (its own client), over the same Redis keys
    yield lambda: StaleResults(
        RedisCacheStore(client, RedisBoundary(), prefix=prefix, clock=clock.wall), wall=clock.wall
    )
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_the_last_good_result_stands_in_when_the_call_fails(clock, downstream, stale_factory):
    shipping = _Switch()
    downstream.on("shipping", shipping)
    worker_a = Gateway([service("cart"), service("shipping")], downstream, clock, stale=stale_factory())
    worker_b = Gateway([service("cart"), service("shipping")], downstream, clock, stale=stale_factory())
    first = worker_a.executor.run(_endpoint(), _request())
    assert isinstance(first, Success) and first.body["shipping"] == {"eta": 1, "q": "75001"}
    assert "staleServices" not in first.body
    shipping.up = False
    clock.advance(120)
    served = worker_b.executor.run(_endpoint(), _request())  # another worker: through Redis when shared
    assert isinstance(served, Success)
    assert served.body["shipping"] == {"eta": 1, "q": "75001"}
    assert served.body["staleServices"] == ["shipping"]
    assert "partialData" not in served.body and "failedServices" not in served.body
    assert served.stale_services == ("shipping",) and not served.partial
    decisions = [(d.decision, d.call_id) for d in worker_b.recorder.decisions]
    assert decisions == [("stale_served", "shipping")]


def test_another_rendered_request_gets_the_fallback(clock, downstream, stale_factory):
    shipping = _Switch()
    downstream.on("shipping", shipping)
    gateway = Gateway([service("cart"), service("shipping")], downstream, clock, stale=stale_factory())
    gateway.executor.run(_endpoint(), _request("75001"))
    shipping.up = False
    other = gateway.executor.run(_endpoint(), _request("10115"))
    assert isinstance(other, Success)
    assert other.body["shipping"] == {"eta": None}
    assert other.body["failedServices"] == ["shipping"] and "staleServices" not in other.body


def test_a_result_older_than_stale_if_error_s_is_not_served(clock, downstream, stale_factory):
    shipping = _Switch()
    downstream.on("shipping", shipping)
    gateway = Gateway([service("cart"), service("shipping")], downstream, clock, stale=stale_factory())
    gateway.executor.run(_endpoint(stale_s=60), _request())
    shipping.up = False
    clock.advance(61)
    late = gateway.executor.run(_endpoint(stale_s=60), _request())
    assert isinstance(late, Success) and late.body["shipping"] == {"eta": None}
    assert late.partial and not late.stale_services
    assert gateway.recorder.decisions == []


def test_the_newest_good_result_is_the_one_kept(clock, downstream, stale_factory):
    shipping = _Switch()
    downstream.on("shipping", shipping)
    gateway = Gateway([service("cart"), service("shipping")], downstream, clock, stale=stale_factory())
    for _ in range(3):
        gateway.executor.run(_endpoint(), _request())
    shipping.up = False
    served = gateway.executor.run(_endpoint(), _request())
    assert isinstance(served, Success) and served.body["shipping"]["eta"] == 3


def test_without_stale_if_error_s_nothing_is_kept(clock, downstream):
    shipping = _Switch()
    downstream.on("shipping", shipping)
    gateway = Gateway([service("cart"), service("shipping")], downstream, clock)
    gateway.executor.run(_endpoint(stale_s=None), _request())
    shipping.up = False
    result = gateway.executor.run(_endpoint(stale_s=None), _request())
    assert isinstance(result, Success) and result.body["shipping"] == {"eta": None} and result.partial


def test_a_forwarded_authorization_is_part_of_the_request(clock, downstream):
    """A bearer_forward service answers per user: one user's kept answer is never another's."""
    shipping = _Switch()
    downstream.on("shipping", shipping)
    forwarded = service("shipping", auth=DownstreamAuth(type="bearer_forward"))
    gateway = Gateway([service("cart"), forwarded], downstream, clock)
    gateway.executor.run(_endpoint(), _request(authorization="Bearer alice"))
    shipping.up = False
    bob = gateway.executor.run(_endpoint(), _request(authorization="Bearer bob"))
    assert isinstance(bob, Success) and bob.body["shipping"] == {"eta": None}
    alice = gateway.executor.run(_endpoint(), _request(authorization="Bearer alice"))
    assert isinstance(alice, Success) and alice.body["staleServices"] == ["shipping"]


def test_required_calls_are_never_served_stale(clock, downstream):
    """The plan type allows it; gateway check refuses it, and the engine ignores it anyway."""
    shipping = _Switch()
    downstream.on("shipping", shipping)
    gateway = Gateway([service("shipping")], downstream, clock)
    required = endpoint(call("shipping", stale_if_error_s=300))
    gateway.executor.run(required, _request())
    shipping.up = False
    assert not isinstance(gateway.executor.run(required, _request()), Success)


def test_redis_down_gives_the_fallback_and_is_reported(clock, downstream):
    shipping = _Switch()
    downstream.on("shipping", shipping)
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    errors: list[str] = []
    stale = StaleResults(
        RedisCacheStore(dead, RedisBoundary(retry_after_s=0.0)),
        wall=clock.wall,
        on_store_error=lambda store, _error: errors.append(store),
    )
    gateway = Gateway([service("cart"), service("shipping")], downstream, clock, stale=stale)
    ok = gateway.executor.run(_endpoint(), _request())
    assert isinstance(ok, Success) and ok.body["shipping"]["eta"] == 1
    shipping.up = False
    result = gateway.executor.run(_endpoint(), _request())
    assert isinstance(result, Success) and result.body["shipping"] == {"eta": None}
    assert errors == ["stale", "stale"]


def test_a_good_answer_after_a_stale_one_is_fresh(clock, downstream):
    shipping = _Switch()
    downstream.on("shipping", shipping)
    downstream.on("cart", reply(200, {"items": []}))
    gateway = Gateway([service("cart"), service("shipping")], downstream, clock)
    gateway.executor.run(_endpoint(), _request())
    shipping.up = False
    gateway.executor.run(_endpoint(), _request())
    shipping.up = True
    fresh = gateway.executor.run(_endpoint(), _request())
    assert isinstance(fresh, Success) and fresh.body["shipping"]["eta"] == 2 and "staleServices" not in fresh.body
    assert dataclasses.asdict(fresh)["stale_services"] == ()


class _CountingStore(InProcessCacheStore):
    def __init__(self, clock) -> None:  # type: ignore[no-untyped-def]
        super().__init__(clock=clock.wall)
        self.puts = 0

    def put(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.puts += 1
        super().put(*args, **kwargs)


def test_an_unchanged_result_is_not_written_again_at_once(clock):  # type: ignore[no-untyped-def]
    store = _CountingStore(clock)
    stale = StaleResults(store, wall=clock.wall)
    for _ in range(5):  # a steady answer: one store write, not one per call
        stale.keep("k", {"eta": 1}, max_age_s=300)
    assert store.puts == 1
    stale.keep("k", {"eta": 2}, max_age_s=300)  # a changed answer is kept at once
    assert store.puts == 2 and stale.recall("k", max_age_s=300).body == {"eta": 2}  # type: ignore[union-attr]
    clock.advance(1.0)  # an unchanged one again after REWRITE_S: its age and expiry move on
    stale.keep("k", {"eta": 2}, max_age_s=300)
    assert store.puts == 3 and stale.recall("k", max_age_s=300).age_s == 0  # type: ignore[union-attr]
    stale.keep("k", {"eta": 2}, max_age_s=5)  # a short stale_if_error_s: rewritten after a tenth of it
    clock.advance(0.5)
    stale.keep("k", {"eta": 2}, max_age_s=5)
    assert store.puts == 4


@pytest.mark.parametrize(
    "body",
    [
        {"eta": 1, "note": "café ☕"},
        {"eta": 2**70},  # beyond 64 bits: orjson refuses it, json writes it
        {"note": "\ud800"},  # an unpaired surrogate (a "\ud800" escape the standard library read)
    ],
)
def test_any_body_json_reads_is_kept_and_recalled_as_it_was(clock, body):  # type: ignore[no-untyped-def]
    stale = StaleResults(wall=clock.wall)
    stale.keep("k", body, max_age_s=300)
    assert stale.recall("k", max_age_s=300).body == body  # type: ignore[union-attr]


def test_the_key_is_the_same_for_the_same_rendered_request_only() -> None:
    from orchestration.downstream.request import RequestSpec
    from orchestration.resilience.stale import stale_key

    spec = RequestSpec("POST", "/estimate", (("zip", "10115"),), (("X-A", "1"),), {"n": 2**70, "s": "\ud800"}, True)
    same = RequestSpec("POST", "/estimate", (("zip", "10115"),), (("x-a", "1"),), {"n": 2**70, "s": "\ud800"}, True)
    other = dataclasses.replace(spec, json_body={"n": 2**70 + 1, "s": "\ud800"})
    key = stale_key("e", "c", spec, forwards_authorization=False)
    assert key == stale_key("e", "c", same, forwards_authorization=False)
    assert key != stale_key("e", "c", other, forwards_authorization=False)


def test_a_result_kept_per_call_is_recalled_by_its_key_and_not_rewritten_at_once(clock) -> None:  # type: ignore[no-untyped-def]
    from orchestration.downstream.request import RequestSpec
    from orchestration.resilience.stale import stale_key

    store = _CountingStore(clock)
    stale = StaleResults(store, wall=clock.wall)
    spec = RequestSpec("POST", "/estimate", (), (("X-A", "1"),), {"n": 2**70, "s": "\ud800"}, True)
    for _ in range(3):  # what the executor does on every good call
        stale.keep_result("e", "c", spec, {"eta": 1}, False, 300)
    assert store.puts == 1
    key = stale_key("e", "c", spec, forwards_authorization=False)
    assert stale.recall(key, max_age_s=300).body == {"eta": 1}  # type: ignore[union-attr]
    stale.keep_result("e", "c", spec, {"eta": 2}, False, 300)  # a changed answer: at once
    assert store.puts == 2 and stale.recall(key, max_age_s=300).body == {"eta": 2}  # type: ignore[union-attr]
    other = RequestSpec("POST", "/estimate", (), (("X-A", "2"),), {"n": 1}, True)
    stale.keep_result("e", "c", other, {"eta": 2}, False, 300)  # another request: its own entry
    assert store.puts == 3 and stale.recall(key, max_age_s=300).body == {"eta": 2}  # type: ignore[union-attr]
