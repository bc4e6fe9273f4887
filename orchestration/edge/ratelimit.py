"""Gateway rate limits: the layer's rules and the endpoint's own, one round trip.

Each rule becomes a bucket keyed by its scope's subject:

    user      the verified user id (anonymous clients: their IP)
    ip        the client IP (``client_ip``), IPv6 by /64
    endpoint  the endpoint and the user (anonymous: the IP)
    global    everyone

The layer's buckets count every request; an endpoint's own buckets carry the
endpoint's name, so they count only its requests. All buckets of a request go
to the store in one call. Over a user/ip/endpoint limit: 429 ``RATE_LIMITED``;
over a global limit only: 503 ``OVERLOADED`` (both with Retry-After). The
``RateLimit-*`` headers describe the tightest bucket. When the store is
unreachable the request is admitted (fail open), counted and logged once.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from orchestration.edge.client_ip import ip_bucket
from orchestration.edge.edge_metrics import EdgeMetrics, NullEdgeMetrics
from orchestration.edge.rate_store import Bucket, BucketState, RateStore
from orchestration.edge.redis_boundary import StoreUnavailable
from orchestration.errors import GatewayError, Overloaded, RateLimited
from orchestration.plan import RateLimitRule, RateLimitScope


@dataclass(frozen=True, slots=True)
class RateSubject:
    """Who a request counts against."""

    endpoint: str
    client_ip: str
    user_id: str | None


@dataclass(frozen=True, slots=True)
class RateVerdict:
    headers: Mapping[str, str] = field(default_factory=dict)
    error: GatewayError | None = None  # RateLimited or Overloaded, carrying the headers
    enforced: bool = True  # False when the store was unreachable (failed open)


@dataclass(frozen=True, slots=True)
class _Checked:
    scope: RateLimitScope
    bucket: Bucket
    state: BucketState


class RateLimiter:
    def __init__(
        self,
        store: RateStore,
        *,
        clock: Callable[[], float] = time.time,
        metrics: EdgeMetrics | None = None,
        prefix: str = "gw:rl:",
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics: EdgeMetrics = metrics or NullEdgeMetrics()
        self._prefix = prefix

    def check(
        self, *, layer_rules: Sequence[RateLimitRule], endpoint_rules: Sequence[RateLimitRule], subject: RateSubject
    ) -> RateVerdict:
        scoped = [*self._buckets(layer_rules, subject, "layer"), *self._buckets(endpoint_rules, subject, "endpoint")]
        if not scoped:
            return RateVerdict()
        try:
            states = self._store.acquire([bucket for _, bucket in scoped], self._clock())
        except StoreUnavailable as error:
            self._metrics.on_store_error("rate_limit", error)
            return RateVerdict(enforced=False)
        checked = [_Checked(scope, bucket, state) for (scope, bucket), state in zip(scoped, states, strict=True)]
        return self._verdict(checked)

    def _buckets(
        self, rules: Iterable[RateLimitRule], subject: RateSubject, origin: str
    ) -> list[tuple[RateLimitScope, Bucket]]:
        namespace = "layer" if origin == "layer" else "ep:" + _quoted(subject.endpoint)
        found = []
        for rule in rules:
            if rule.limit <= 0 or rule.window_s <= 0:
                continue  # rejected by the config checker; never divide by zero here
            who = _subject_of(rule.scope, subject)
            key = f"{self._prefix}{namespace}:{rule.scope}:{rule.limit}/{rule.window_s:g}:{who}"
            found.append((rule.scope, Bucket(key, rule.limit, rule.window_s)))
        return found

    def _verdict(self, checked: list[_Checked]) -> RateVerdict:
        denied = [c for c in checked if not c.state.allowed]
        if not denied:
            tightest = min(checked, key=lambda c: (c.state.remaining, -c.state.reset_s))
            return RateVerdict(headers=rate_headers(tightest.bucket, tightest.state))
        by_client = [c for c in denied if c.scope != "global"]
        worst = max(by_client or denied, key=lambda c: c.state.retry_after_s)
        headers = rate_headers(worst.bucket, worst.state)
        retry_after_s = max(1, math.ceil(worst.state.retry_after_s))
        self._metrics.on_rate_limited(worst.scope)
        if worst.scope == "global":
            return RateVerdict(headers, Overloaded(retry_after_s=retry_after_s, headers=dict(headers)))
        message = f"Rate limit exceeded ({worst.scope}: {worst.bucket.limit} per {worst.bucket.window_s:g}s)"
        return RateVerdict(headers, RateLimited(message, retry_after_s=retry_after_s, headers=dict(headers)))


def _subject_of(scope: RateLimitScope, subject: RateSubject) -> str:
    """The bucket's subject, each part percent-encoded so ``|`` separates unambiguously."""
    ip = _ip_part(subject.client_ip)
    who = "u:" + _quoted(subject.user_id) if subject.user_id is not None else "anon:" + ip
    if scope == "user":
        return who
    if scope == "ip":
        return ip
    if scope == "endpoint":
        return f"{_quoted(subject.endpoint)}|{who}"
    return "all"


# Bounded memos of pure functions: the same clients, users and endpoints come back
# request after request, and parsing an address (for the IPv6 /64 bucket) and
# percent-encoding were ~3 % of a request's CPU.
@functools.lru_cache(maxsize=8192)
def _ip_part(client_ip: str) -> str:
    return quote(ip_bucket(client_ip), safe="")


@functools.lru_cache(maxsize=8192)
def _quoted(text: str) -> str:
    return quote(text, safe="")


def rate_headers(bucket: Bucket, state: BucketState) -> dict[str, str]:
    """IETF draft RateLimit headers for one bucket (seconds, rounded up)."""
    return {
        "RateLimit-Limit": str(bucket.limit),
        "RateLimit-Remaining": str(state.remaining),
        "RateLimit-Reset": str(max(0, math.ceil(state.reset_s - 1e-9))),
        "RateLimit-Policy": f"{bucket.limit};w={bucket.window_s:g}",
    }
