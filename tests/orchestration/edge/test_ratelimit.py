"""The rate limiter: scopes, statuses, headers and failing open (both stores)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from orchestration.edge.edge_metrics import NullEdgeMetrics
from orchestration.edge.rate_store import Bucket, BucketState, InProcessRateStore, RateStore
from orchestration.edge.ratelimit import RateLimiter, RateSubject, RateVerdict
from orchestration.edge.redis_boundary import RedisBoundary, StoreUnavailable
from orchestration.edge.redis_rate_store import RedisRateStore
from orchestration.errors import Overloaded, RateLimited
from orchestration.plan import RateLimitRule
from tests.orchestration.edge.conftest import FakeWallClock

ALICE = RateSubject(endpoint="profile", client_ip="203.0.113.7", user_id="alice")
BOB = RateSubject(endpoint="profile", client_ip="203.0.113.8", user_id="bob")


class RecordingMetrics(NullEdgeMetrics):
    def __init__(self) -> None:
        self.store_errors: list[str] = []
        self.limited: list[str] = []

    def on_store_error(self, store: str, error: Exception) -> None:
        self.store_errors.append(store)

    def on_rate_limited(self, scope: str) -> None:
        self.limited.append(scope)


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> RateStore:
    if request.param == "memory":
        return InProcessRateStore()
    return RedisRateStore(request.getfixturevalue("redis_client"), RedisBoundary())


@pytest.fixture
def metrics() -> RecordingMetrics:
    return RecordingMetrics()


@pytest.fixture
def limiter(store: RateStore, clock: FakeWallClock, metrics: RecordingMetrics, key_prefix: str) -> RateLimiter:
    return RateLimiter(store, clock=clock, metrics=metrics, prefix=key_prefix)


def rule(scope: str, limit: int, window_s: float = 60) -> RateLimitRule:
    return RateLimitRule(scope=scope, limit=limit, window_s=window_s)  # type: ignore[arg-type]


def check(
    limiter: RateLimiter,
    subject: RateSubject,
    layer: Sequence[RateLimitRule] = (),
    endpoint: Sequence[RateLimitRule] = (),
) -> RateVerdict:
    return limiter.check(layer_rules=layer, endpoint_rules=endpoint, subject=subject)


def test_fourth_request_over_a_user_limit_of_three_is_429_and_another_user_passes(
    limiter: RateLimiter, metrics: RecordingMetrics
) -> None:
    layer = [rule("user", 3)]
    verdicts = [check(limiter, ALICE, layer) for _ in range(4)]
    assert [v.error is None for v in verdicts] == [True, True, True, False]
    error = verdicts[3].error
    assert isinstance(error, RateLimited)
    assert error.status == 429
    assert error.response_headers() == {
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "60",
        "RateLimit-Policy": "3;w=60",
        "Retry-After": "20",
    }
    assert check(limiter, BOB, layer).error is None
    assert metrics.limited == ["user"]


def test_admitted_requests_carry_the_tightest_buckets_headers(limiter: RateLimiter) -> None:
    verdict = check(limiter, ALICE, [rule("user", 100), rule("ip", 5)])
    assert verdict.headers == {
        "RateLimit-Limit": "5",
        "RateLimit-Remaining": "4",
        "RateLimit-Reset": "12",
        "RateLimit-Policy": "5;w=60",
    }


def test_ip_limit_counts_every_user_behind_one_address(limiter: RateLimiter) -> None:
    layer = [rule("ip", 2)]
    same_ip_bob = RateSubject(endpoint="profile", client_ip=ALICE.client_ip, user_id="bob")
    assert check(limiter, ALICE, layer).error is None
    assert check(limiter, same_ip_bob, layer).error is None
    assert isinstance(check(limiter, ALICE, layer).error, RateLimited)
    assert check(limiter, BOB, layer).error is None


def test_ipv6_clients_share_a_bucket_per_64(limiter: RateLimiter) -> None:
    layer = [rule("ip", 1)]
    first = RateSubject(endpoint="profile", client_ip="2001:db8:1:2::1", user_id=None)
    rotated = RateSubject(endpoint="profile", client_ip="2001:db8:1:2:ffff::9", user_id=None)
    assert check(limiter, first, layer).error is None
    assert isinstance(check(limiter, rotated, layer).error, RateLimited)


def test_global_limit_answers_503_overloaded(limiter: RateLimiter, metrics: RecordingMetrics) -> None:
    layer = [rule("global", 2)]
    assert check(limiter, ALICE, layer).error is None
    assert check(limiter, BOB, layer).error is None
    error = check(limiter, ALICE, layer).error
    assert isinstance(error, Overloaded)
    assert (error.status, error.response_headers()["Retry-After"]) == (503, "30")
    assert metrics.limited == ["global"]


def test_a_client_over_its_own_limit_gets_429_even_when_global_is_exhausted(limiter: RateLimiter) -> None:
    layer = [rule("user", 1), rule("global", 1)]
    check(limiter, ALICE, layer)
    assert isinstance(check(limiter, ALICE, layer).error, RateLimited)


def test_endpoint_scope_is_per_endpoint_and_user(limiter: RateLimiter) -> None:
    layer = [rule("endpoint", 1)]
    other_endpoint = RateSubject(endpoint="orders", client_ip=ALICE.client_ip, user_id="alice")
    assert check(limiter, ALICE, layer).error is None
    assert isinstance(check(limiter, ALICE, layer).error, RateLimited)
    assert check(limiter, other_endpoint, layer).error is None
    assert check(limiter, BOB, layer).error is None


def test_an_endpoints_own_rules_count_only_its_requests(limiter: RateLimiter) -> None:
    own = [rule("user", 1)]
    orders = RateSubject(endpoint="orders", client_ip=ALICE.client_ip, user_id="alice")
    assert check(limiter, ALICE, endpoint=own).error is None
    assert check(limiter, orders, endpoint=()).error is None  # another endpoint, no own rules
    assert isinstance(check(limiter, ALICE, endpoint=own).error, RateLimited)


def test_anonymous_clients_are_limited_per_ip_under_user_scope(limiter: RateLimiter) -> None:
    layer = [rule("user", 1)]
    anonymous = RateSubject(endpoint="profile", client_ip="198.51.100.1", user_id=None)
    neighbour = RateSubject(endpoint="profile", client_ip="198.51.100.2", user_id=None)
    assert check(limiter, anonymous, layer).error is None
    assert isinstance(check(limiter, anonymous, layer).error, RateLimited)
    assert check(limiter, neighbour, layer).error is None


def test_window_refill_uses_the_injected_clock(limiter: RateLimiter, clock: FakeWallClock) -> None:
    layer = [rule("user", 2, window_s=10)]
    check(limiter, ALICE, layer)
    check(limiter, ALICE, layer)
    assert check(limiter, ALICE, layer).error is not None
    clock.advance(5)
    assert check(limiter, ALICE, layer).error is None


def test_no_rules_no_headers(limiter: RateLimiter) -> None:
    assert check(limiter, ALICE) == RateVerdict()


class BrokenStore:
    def acquire(self, buckets: Sequence[Bucket], now: float) -> tuple[BucketState, ...]:
        raise StoreUnavailable("down")


def test_unreachable_store_fails_open_and_is_counted(metrics: RecordingMetrics) -> None:
    limiter = RateLimiter(BrokenStore(), metrics=metrics)
    verdicts = [check(limiter, ALICE, [rule("user", 1)]) for _ in range(3)]
    assert all(v.error is None and not v.enforced for v in verdicts)
    assert metrics.store_errors == ["rate_limit"] * 3


def test_redis_refusing_connections_fails_open(metrics: RecordingMetrics) -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    limiter = RateLimiter(RedisRateStore(dead, RedisBoundary()), metrics=metrics)
    verdict = check(limiter, ALICE, [rule("user", 1)])
    assert (verdict.error, verdict.enforced, metrics.store_errors) == (None, False, ["rate_limit"])
