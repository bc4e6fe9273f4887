"""Cache store behaviour, run against the in-process store and the Redis store alike."""

from __future__ import annotations

import pytest
import redis

from orchestration.edge.cache_store import CacheStore, InProcessCacheStore
from orchestration.edge.redis_boundary import RedisBoundary, StoreUnavailable
from orchestration.edge.redis_cache_store import RedisCacheStore
from tests.orchestration.edge.conftest import FakeWallClock


@pytest.fixture
def store(cache_store: CacheStore) -> CacheStore:
    return cache_store


def put(store: CacheStore, key: str, *tags: str, started_at: float = 0.0, ttl_s: float = 60) -> bool:
    return store.put(key, f"payload-{key}".encode(), ttl_s=ttl_s, tags=tags, started_at=started_at)


def test_put_then_get_gives_payload_and_remaining_ttl(store: CacheStore) -> None:
    assert put(store, "k1", "catalog")
    entry = store.get("k1")
    assert entry is not None
    assert entry.payload == b"payload-k1"
    assert entry.ttl_remaining_s == pytest.approx(60, abs=0.5)
    assert store.get("absent") is None


def test_purge_deletes_exactly_the_entries_carrying_the_tags(store: CacheStore) -> None:
    put(store, "alice-profile", "user:alice")
    put(store, "alice-orders", "user:alice", "orders")
    put(store, "bob-profile", "user:bob")
    put(store, "catalog", "catalog")
    assert store.purge(["user:alice", "unknown-tag"]) == 2
    assert store.get("alice-profile") is None
    assert store.get("alice-orders") is None
    assert store.get("bob-profile") is not None
    assert store.get("catalog") is not None


def test_purge_is_idempotent(store: CacheStore) -> None:
    put(store, "k", "t")
    assert store.purge(["t"]) == 1
    assert store.purge(["t"]) == 0


def test_put_refuses_a_run_that_started_before_a_purge_of_its_tag(store: CacheStore, clock: FakeWallClock) -> None:
    started_at = clock()
    clock.advance(1)
    store.purge(["user:alice"])
    assert not put(store, "stale", "user:alice", started_at=started_at)
    assert store.get("stale") is None
    clock.advance(1)
    assert put(store, "fresh", "user:alice", started_at=clock())
    assert put(store, "other-tag", "user:bob", started_at=started_at)


def test_fill_lock_is_exclusive_and_released_only_by_its_holder(store: CacheStore) -> None:
    assert store.try_lock("k", "a", 5)
    assert not store.try_lock("k", "b", 5)
    store.unlock("k", "b")
    assert not store.try_lock("k", "b", 5)
    store.unlock("k", "a")
    assert store.try_lock("k", "b", 5)


def test_memory_entries_expire_and_locks_lapse(clock: FakeWallClock) -> None:
    store = InProcessCacheStore(clock=clock)
    put(store, "k", ttl_s=10)
    store.try_lock("k", "a", 5)
    clock.advance(6)
    entry = store.get("k")
    assert entry is not None and entry.ttl_remaining_s == pytest.approx(4)
    assert store.try_lock("k", "b", 5)
    clock.advance(4)
    assert store.get("k") is None


def test_memory_store_is_bounded(clock: FakeWallClock) -> None:
    store = InProcessCacheStore(clock=clock, max_entries=10)
    for i in range(25):
        put(store, f"k{i}", "t", ttl_s=100 + i)
    assert sum(store.get(f"k{i}") is not None for i in range(25)) <= 10
    assert store.get("k24") is not None


def test_redis_entry_and_index_expire(redis_client: redis.Redis, key_prefix: str, clock: FakeWallClock) -> None:
    store = RedisCacheStore(redis_client, RedisBoundary(), prefix=key_prefix, clock=clock)
    put(store, "k", "catalog", ttl_s=30)
    assert 29_000 < redis_client.pttl(key_prefix + "e:k") <= 30_000
    assert 29_000 < redis_client.pttl(key_prefix + "t:catalog") <= 30_000


def test_redis_index_drops_members_that_expired(
    redis_client: redis.Redis, key_prefix: str, clock: FakeWallClock
) -> None:
    store = RedisCacheStore(redis_client, RedisBoundary(), prefix=key_prefix, clock=clock)
    put(store, "old", "catalog", ttl_s=5)
    clock.advance(10)
    put(store, "new", "catalog", ttl_s=5)
    assert redis_client.zrange(key_prefix + "t:catalog", 0, -1) == [(key_prefix + "e:new").encode()]


def test_redis_boundary_fails_fast_for_a_second_after_an_error(clock: FakeWallClock) -> None:
    boundary = RedisBoundary(retry_after_s=1.0, clock=clock)
    calls: list[str] = []

    def refused() -> None:
        calls.append("refused")
        raise redis.ConnectionError("refused")

    def answered() -> str:
        calls.append("answered")
        return "PONG"

    with pytest.raises(StoreUnavailable):
        boundary.call(refused)
    clock.advance(0.5)
    with pytest.raises(StoreUnavailable):
        boundary.call(answered)  # not even tried: Redis is marked down
    clock.advance(0.6)
    assert boundary.call(answered) == "PONG"
    assert calls == ["refused", "answered"]
