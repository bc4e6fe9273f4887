"""The response cache against a fake runner: hits, misses, scopes, stampedes, purges."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestration.edge.cache import (
    CacheAnswer,
    CacheRequest,
    ResponseCache,
    Storable,
    cache_key,
    is_cacheable,
)
from orchestration.edge.cache_store import CacheStore, InProcessCacheStore, StoredEntry
from orchestration.edge.edge_metrics import NullEdgeMetrics
from orchestration.edge.redis_boundary import RedisBoundary, StoreUnavailable
from orchestration.edge.redis_cache_store import RedisCacheStore
from orchestration.edge.single_flight import SingleFlight
from orchestration.plan import CachePolicy
from orchestration.templates import compile_template
from tests.orchestration.edge.conftest import FakeWallClock

USER_POLICY = CachePolicy(ttl_s=60, scope="user", tags=(compile_template("user:{{ user.sub }}"),))
SHARED_POLICY = CachePolicy(ttl_s=30, scope="shared", tags=(compile_template("{{ items[].sku }}"),))


@dataclass
class Result:
    """What the executor gives: a body and whether it is partial; or an error."""

    body: Any
    partial: bool = False
    error: bool = False


@dataclass
class FakeDownstream:
    """Counts runs; answers with ``answer`` after ``delay_s`` of real time."""

    answer: Result = field(default_factory=lambda: Result({"items": [{"sku": "A1"}], "n": 1}))
    delay_s: float = 0.0
    runs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> Result:
        with self.lock:
            self.runs += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.answer


def storable(user: dict[str, Any]) -> Callable[[Result], Storable | None]:
    def classify(result: Result) -> Storable | None:
        if result.error or result.partial:
            return None
        return Storable(result.body, {**result.body, "user": user})

    return classify


class RecordingMetrics(NullEdgeMetrics):
    def __init__(self) -> None:
        self.store_errors: list[str] = []
        self.lookups: list[bool] = []

    def on_store_error(self, store: str, error: Exception) -> None:
        self.store_errors.append(store)

    def on_cache_lookup(self, endpoint: str, hit: bool) -> None:
        self.lookups.append(hit)


@pytest.fixture
def store(cache_store: CacheStore) -> CacheStore:
    return cache_store


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def cache(store: CacheStore, clock: FakeWallClock, metrics: RecordingMetrics) -> ResponseCache:
    return ResponseCache(store, clock=clock, metrics=metrics)


def request_for(
    user: str | None, policy: CachePolicy = USER_POLICY, client_auth: bool = True, **query: str
) -> CacheRequest:
    key = cache_key(namespace="v1", endpoint="profile", path_params={}, query=query, scope=policy.scope, user_id=user)
    return CacheRequest(key=key, endpoint="profile", policy=policy, run_budget_s=2.0, client_auth=client_auth)


def fetch(cache: ResponseCache, downstream: FakeDownstream, user: str = "alice", **kw: Any) -> CacheAnswer[Result]:
    return cache.fetch(request_for(user, **kw), downstream.run, storable({"sub": user}))


def test_miss_then_hit_with_headers(cache: ResponseCache, metrics: RecordingMetrics) -> None:
    downstream = FakeDownstream()
    first = fetch(cache, downstream)
    second = fetch(cache, downstream)
    assert (first.hit, first.result, dict(first.headers)) == (
        False,
        downstream.answer,
        {"X-Cache": "MISS", "Cache-Control": "private, max-age=60", "Age": "0"},
    )
    assert (second.hit, second.body, second.headers["X-Cache"]) == (True, downstream.answer.body, "HIT")
    assert second.headers["Cache-Control"] in {"private, max-age=60", "private, max-age=59"}
    assert downstream.runs == 1
    assert metrics.lookups == [False, True]


def test_hit_reports_age_and_remaining_ttl(clock: FakeWallClock) -> None:
    cache = ResponseCache(InProcessCacheStore(clock=clock), clock=clock)
    downstream = FakeDownstream()
    fetch(cache, downstream, policy=SHARED_POLICY)
    clock.advance(12.5)
    hit = fetch(cache, downstream, policy=SHARED_POLICY)
    assert dict(hit.headers) == {"X-Cache": "HIT", "Cache-Control": "private, max-age=17", "Age": "12"}
    clock.advance(18)
    assert not fetch(cache, downstream, policy=SHARED_POLICY).hit
    assert downstream.runs == 2


@pytest.mark.parametrize(
    ("policy", "client_auth", "visibility"),
    [
        (USER_POLICY, True, "private"),
        (SHARED_POLICY, True, "private"),  # behind client auth: only our cache may share it
        (SHARED_POLICY, False, "public"),
        (USER_POLICY, False, "private"),
    ],
)
def test_only_a_shared_entry_without_client_auth_is_public(
    cache: ResponseCache, policy: CachePolicy, client_auth: bool, visibility: str
) -> None:
    downstream = FakeDownstream()
    miss = cache.fetch(request_for("alice", policy, client_auth), downstream.run, storable({"sub": "alice"}))
    hit = cache.fetch(request_for("alice", policy, client_auth), downstream.run, storable({"sub": "alice"}))
    assert (miss.hit, miss.headers["Cache-Control"]) == (False, f"{visibility}, max-age={policy.ttl_s}")
    assert (hit.hit, hit.headers["Cache-Control"].split(",")[0]) == (True, visibility)
    assert downstream.runs == 1


def test_user_scoped_entry_is_never_served_to_another_user(cache: ResponseCache) -> None:
    alice = FakeDownstream(Result({"name": "Alice"}))
    bob = FakeDownstream(Result({"name": "Bob"}))
    fetch(cache, alice, user="alice")
    answer = fetch(cache, bob, user="bob")
    assert (answer.hit, answer.result) == (False, Result({"name": "Bob"}))
    assert fetch(cache, alice, user="alice").body == {"name": "Alice"}


def test_shared_scope_serves_every_user_and_query_varies_the_key(cache: ResponseCache) -> None:
    downstream = FakeDownstream()
    fetch(cache, downstream, user="alice", policy=SHARED_POLICY)
    assert fetch(cache, downstream, user="bob", policy=SHARED_POLICY).hit
    assert not fetch(cache, downstream, user="bob", policy=SHARED_POLICY, page="2").hit
    assert downstream.runs == 2


@pytest.mark.parametrize("answer", [Result({"error": {}}, error=True), Result({"partialData": True}, partial=True)])
def test_errors_and_partial_responses_are_not_stored(cache: ResponseCache, answer: Result) -> None:
    downstream = FakeDownstream(answer)
    first = fetch(cache, downstream)
    second = fetch(cache, downstream)
    assert dict(first.headers) == {"X-Cache": "MISS", "Cache-Control": "no-store"}
    assert (second.hit, downstream.runs) == (False, 2)


def fetch_concurrently(cache: ResponseCache, downstream: FakeDownstream, count: int) -> list[CacheAnswer[Result]]:
    """``count`` clients released together by a barrier, each fetching the same request."""
    answers: list[CacheAnswer[Result]] = []
    barrier = threading.Barrier(count)

    def client() -> None:
        barrier.wait()
        answers.append(fetch(cache, downstream))

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_ten_concurrent_misses_run_downstream_once(cache: ResponseCache) -> None:
    downstream = FakeDownstream(delay_s=0.1)
    answers = fetch_concurrently(cache, downstream, 10)
    assert downstream.runs == 1
    assert sorted(a.headers["X-Cache"] for a in answers) == ["HIT"] * 9 + ["MISS"]
    assert all((a.body if a.hit else a.result.body) == downstream.answer.body for a in answers)  # type: ignore[union-attr]


def test_concurrent_misses_share_an_error_instead_of_stampeding(cache: ResponseCache) -> None:
    downstream = FakeDownstream(Result({}, error=True), delay_s=0.1)
    answers = fetch_concurrently(cache, downstream, 5)
    assert downstream.runs == 1
    assert all(a.result == downstream.answer and a.headers["Cache-Control"] == "no-store" for a in answers)


def test_a_fill_in_another_process_is_awaited_not_repeated(store: CacheStore, clock: FakeWallClock) -> None:
    request = request_for("alice")
    other_process = ResponseCache(store, clock=clock)
    store.try_lock(request.key, "other-process", 5)
    polls: list[float] = []

    def sleep(seconds: float) -> None:  # the other process stores its value on our second poll
        polls.append(seconds)
        if len(polls) == 2:
            other_process._put(request, Storable({"from": "other"}, {"user": {"sub": "alice"}}), clock())

    downstream = FakeDownstream()
    answer = ResponseCache(store, clock=clock, sleep=sleep).fetch(request, downstream.run, storable({"sub": "alice"}))
    assert (answer.hit, answer.body, downstream.runs, len(polls)) == (True, {"from": "other"}, 0, 2)


def test_a_fill_that_ends_without_storing_lets_a_waiter_run(store: CacheStore, clock: FakeWallClock) -> None:
    request = request_for("alice")
    store.try_lock(request.key, "other-process", 5)
    sleep_calls: list[float] = []

    def sleep(seconds: float) -> None:
        sleep_calls.append(seconds)
        store.unlock(request.key, "other-process")

    downstream = FakeDownstream()
    cache = ResponseCache(store, clock=clock, sleep=sleep)
    answer = cache.fetch(request, downstream.run, storable({"sub": "alice"}))
    assert (answer.hit, downstream.runs, len(sleep_calls)) == (False, 1, 1)
    assert cache.fetch(request, downstream.run, storable({"sub": "alice"})).hit


def test_tags_render_per_entry_and_purge_only_those(cache: ResponseCache) -> None:
    fetch(cache, FakeDownstream(), user="alice")
    fetch(cache, FakeDownstream(), user="bob")
    shared = FakeDownstream(Result({"items": [{"sku": "A1"}, {"sku": "B2"}]}))
    fetch(cache, shared, policy=SHARED_POLICY)
    assert cache.purge(("user:alice",)) == 1
    assert not fetch(cache, FakeDownstream(), user="alice").hit
    assert fetch(cache, FakeDownstream(), user="bob").hit
    assert cache.purge(("B2",)) == 1  # one tag per item of a list-valued tag template
    assert not fetch(cache, shared, policy=SHARED_POLICY).hit


def test_a_run_overtaken_by_a_purge_is_not_stored(cache: ResponseCache, clock: FakeWallClock) -> None:
    def run_while_purged() -> Result:
        clock.advance(0.5)
        cache.purge(("user:alice",))
        clock.advance(0.5)
        return Result({"name": "stale"})

    request = request_for("alice")
    first = cache.fetch(request, run_while_purged, storable({"sub": "alice"}))
    assert first.headers["X-Cache"] == "MISS"
    assert not cache.fetch(request, FakeDownstream().run, storable({"sub": "alice"})).hit


class DownStore:
    def get(self, key: str) -> StoredEntry | None:
        raise StoreUnavailable("down")

    def put(self, key: str, payload: bytes, *, ttl_s: float, tags: Sequence[str], started_at: float) -> bool:
        raise StoreUnavailable("down")

    def try_lock(self, key: str, token: str, ttl_s: float) -> bool:
        raise StoreUnavailable("down")

    def unlock(self, key: str, token: str) -> None:
        raise StoreUnavailable("down")

    def purge(self, tags: Sequence[str]) -> int:
        raise StoreUnavailable("down")


def test_store_down_serves_uncached_answers(metrics: RecordingMetrics) -> None:
    cache = ResponseCache(DownStore(), metrics=metrics)
    downstream = FakeDownstream()
    answers = [fetch(cache, downstream) for _ in range(2)]
    assert [a.result for a in answers] == [downstream.answer] * 2
    assert answers[0].headers["X-Cache"] == "MISS"
    assert (downstream.runs, metrics.store_errors) == (2, ["cache", "cache"])


class FailingWrites(InProcessCacheStore):
    def put(self, key: str, payload: bytes, *, ttl_s: float, tags: Sequence[str], started_at: float) -> bool:
        raise StoreUnavailable("down")


def test_failed_store_write_still_answers(metrics: RecordingMetrics) -> None:
    answer = fetch(ResponseCache(FailingWrites(), metrics=metrics), FakeDownstream())
    assert (answer.result, answer.headers["X-Cache"], metrics.store_errors) == (
        FakeDownstream().answer,
        "MISS",
        ["cache"],
    )


def test_redis_refusing_connections_bypasses_the_cache(metrics: RecordingMetrics) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    cache = ResponseCache(RedisCacheStore(dead, RedisBoundary()), metrics=metrics)
    answer = fetch(cache, FakeDownstream())
    assert (answer.hit, answer.headers["X-Cache"], metrics.store_errors) == (False, "MISS", ["cache"])


@pytest.mark.parametrize(
    ("endpoint_method", "request_method", "ttl_s", "expected"),
    [("GET", "GET", 60, True), ("GET", "HEAD", 60, True), ("POST", "POST", 60, False), ("GET", "GET", 0, False)],
)
def test_only_get_endpoints_with_a_ttl_are_cacheable(
    endpoint_method: str, request_method: str, ttl_s: int, expected: bool
) -> None:
    policy = CachePolicy(ttl_s=ttl_s)
    assert is_cacheable(policy, endpoint_method=endpoint_method, request_method=request_method) is expected


def test_followers_run_themselves_when_the_leader_crashes() -> None:
    flight: SingleFlight[str] = SingleFlight()
    started, release = threading.Event(), threading.Event()
    results: list[str] = []

    def crashing_leader() -> str:
        started.set()
        release.wait()
        raise RuntimeError("bug")

    def lead() -> None:
        with contextlib.suppress(RuntimeError):
            flight.do("k", crashing_leader, wait_s=5)

    leader = threading.Thread(target=lead)
    leader.start()
    started.wait()
    follower = threading.Thread(target=lambda: results.append(flight.do("k", lambda: "own", wait_s=5)[0]))
    follower.start()
    release.set()
    leader.join()
    follower.join()
    assert results == ["own"]
