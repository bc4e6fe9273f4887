"""GCRA behaviour, run against the in-process store and the Redis store alike."""

from __future__ import annotations

import pytest
import redis

from orchestration.edge.rate_store import Bucket, InProcessRateStore, RateStore
from orchestration.edge.redis_boundary import RedisBoundary
from orchestration.edge.redis_rate_store import RedisRateStore

NOW = 1_700_000_000.0


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> RateStore:
    if request.param == "memory":
        return InProcessRateStore()
    client: redis.Redis = request.getfixturevalue("redis_client")
    return RedisRateStore(client, RedisBoundary())


@pytest.fixture
def bucket(key_prefix: str) -> Bucket:
    return Bucket(key_prefix + "user:42", limit=3, window_s=60)


def test_burst_of_limit_then_refused_with_retry_after(store: RateStore, bucket: Bucket) -> None:
    answers = [store.acquire([bucket], NOW)[0] for _ in range(4)]
    assert [a.allowed for a in answers] == [True, True, True, False]
    assert [a.remaining for a in answers] == [2, 1, 0, 0]
    assert answers[3].retry_after_s == pytest.approx(20.0)
    assert answers[2].reset_s == pytest.approx(60.0)


def test_refills_one_request_per_interval(store: RateStore, bucket: Bucket) -> None:
    for _ in range(3):
        store.acquire([bucket], NOW)
    assert not store.acquire([bucket], NOW + 19.9)[0].allowed
    assert store.acquire([bucket], NOW + 20.0)[0].allowed
    assert not store.acquire([bucket], NOW + 20.0)[0].allowed


def test_no_double_burst_across_a_window_boundary(store: RateStore, bucket: Bucket) -> None:
    for _ in range(3):
        store.acquire([bucket], NOW + 59.0)
    admitted = sum(store.acquire([bucket], NOW + 60.5)[0].allowed for _ in range(3))
    assert admitted == 0  # a fixed window would admit 3 more here


def test_full_again_after_a_quiet_window(store: RateStore, bucket: Bucket) -> None:
    for _ in range(3):
        store.acquire([bucket], NOW)
    answers = [store.acquire([bucket], NOW + 60)[0] for _ in range(4)]
    assert [a.allowed for a in answers] == [True, True, True, False]


def test_refused_request_spends_no_bucket(store: RateStore, key_prefix: str) -> None:
    tight = Bucket(key_prefix + "endpoint", limit=1, window_s=60)
    loose = Bucket(key_prefix + "user", limit=5, window_s=60)
    first = store.acquire([tight, loose], NOW)
    second = store.acquire([tight, loose], NOW)
    assert [s.allowed for s in first] == [True, True]
    assert [s.allowed for s in second] == [False, True]
    assert store.acquire([loose], NOW)[0].remaining == 3  # only the admitted request counted


def test_fractional_interval_admits_exactly_the_limit(store: RateStore, key_prefix: str) -> None:
    bucket = Bucket(key_prefix + "frac", limit=3, window_s=1)
    assert [store.acquire([bucket], NOW)[0].allowed for _ in range(4)] == [True, True, True, False]
    assert store.acquire([bucket], NOW + 1 / 3)[0].allowed


def test_buckets_are_independent(store: RateStore, key_prefix: str) -> None:
    alice = Bucket(key_prefix + "alice", limit=1, window_s=60)
    bob = Bucket(key_prefix + "bob", limit=1, window_s=60)
    assert store.acquire([alice], NOW)[0].allowed
    assert not store.acquire([alice], NOW)[0].allowed
    assert store.acquire([bob], NOW)[0].allowed


def test_redis_key_expires_when_the_bucket_is_full_again(redis_client: redis.Redis, bucket: Bucket) -> None:
    RedisRateStore(redis_client, RedisBoundary()).acquire([bucket], NOW)
    ttl_ms = redis_client.pttl(bucket.key)
    assert 19_000 < ttl_ms <= 20_001
