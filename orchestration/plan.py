"""The compiled, immutable description of the orchestration layer.

A Plan is what the engine runs. It is built once from the registry by
``registry.compiler`` (the only bridge from Django models) and then shared,
read-only, by every request until the configuration version changes. Nothing
here imports Django; every duration carries its unit in its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from orchestration.templates import Template

BackoffKind = Literal["exponential", "fixed", "none"]
RetryOn = Literal["5xx", "timeout", "connect_error", "429"]
DownstreamAuthKind = Literal["none", "bearer_forward", "bearer", "api_key", "mtls"]
ClientAuthKind = Literal["jwt", "api_key", "none", "oauth2_introspection", "session"]
RateLimitScope = Literal["user", "ip", "endpoint", "global"]
CacheScope = Literal["user", "shared"]
SchemaViolationAction = Literal["log", "fail"]

RETRYABLE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    window_s: float = 60.0
    open_s: float = 30.0
    half_open_probes: int = 3
    # rate rule (both set or neither): also opens when, over window_s, at least min_calls
    # calls were made and at least failure_rate % of them failed
    min_calls: int | None = None
    failure_rate: float | None = None

    @property
    def rate_based(self) -> bool:
        return self.min_calls is not None and self.failure_rate is not None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 0
    backoff: BackoffKind = "exponential"
    base_ms: int = 100
    jitter: bool = False
    retry_on: frozenset[RetryOn] = frozenset({"5xx", "timeout"})
    # retry budget (resilience.retry_budget): retries stay within budget_percent % of the
    # service's calls over the last 10 s, with at least budget_min_per_s allowed
    budget_percent: float | None = None
    budget_min_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class HedgePolicy:
    """GET/idempotent calls: a second attempt when the first has not answered after after_ms."""

    after_ms: int


@dataclass(frozen=True, slots=True)
class BulkheadPolicy:
    max_concurrent: int = 100
    max_wait_ms: int = 0


@dataclass(frozen=True, slots=True)
class DownstreamAuth:
    """How the gateway authenticates to a service. Secrets are env/file references."""

    type: DownstreamAuthKind = "none"
    token_env: str | None = None  # bearer
    header: str | None = None  # api_key
    key_env: str | None = None  # api_key
    cert_file: str | None = None  # mtls
    key_file: str | None = None  # mtls
    ca_file: str | None = None  # mtls


@dataclass(frozen=True, slots=True)
class Service:
    """A downstream service of the registry, with its policies."""

    name: str
    base_url: str
    owner: str = ""
    avg_latency_ms: int | None = None
    sla: float | None = None
    timeout_ms: int = 1000
    auth: DownstreamAuth = DownstreamAuth()
    breaker: BreakerPolicy = BreakerPolicy()
    retry: RetryPolicy = RetryPolicy()
    bulkhead: BulkheadPolicy = BulkheadPolicy()
    deadline_header: str | None = None  # each attempt sends the whole ms it has left
    dedupe: bool = False  # identical in-flight GET/idempotent requests share one (orchestration.downstream.dedupe)
    hedge: HedgePolicy | None = None  # resilience.hedge


@dataclass(frozen=True, slots=True)
class CallCachePolicy:
    """A per-call cache of one downstream answer (orchestration.call_cache)."""

    ttl_s: int
    tags: tuple[Template, ...] = ()


@dataclass(frozen=True, slots=True)
class GraphqlRequest:
    """A GraphQL call's request (orchestration.downstream.graphql): the query as written
    (never templated), its variables (templates), the operation to run when it has several."""

    query: str
    variables: Template
    operation_name: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One downstream call of an endpoint's call sequence."""

    id: str
    service: str
    stage: int
    method: str
    path: Template
    query: tuple[tuple[str, Template], ...] = ()
    headers: tuple[tuple[str, Template], ...] = ()
    body: Template | None = None
    required: bool = True
    timeout_ms: int | None = None  # None: the service's timeout_ms
    idempotent: bool = False
    fallback: Any = None  # JSON value; treat as read-only
    # Composition (contract section 10; orchestration.fanout): a condition, a fan-out, a cache.
    when: Template | None = None
    for_each: Template | None = None
    max_parallel: int | None = None  # None: every element at once (at most the fan-out limit)
    cache: CallCachePolicy | None = None
    # optional calls: when the call fails, its last good result for the same rendered
    # request, at most this old, stands in for the fallback (resilience.stale)
    stale_if_error_s: int | None = None
    graphql: GraphqlRequest | None = None  # POSTs {"query", "variables"}; the result is the answer's data

    @property
    def retryable_method(self) -> bool:
        return self.idempotent or self.method in RETRYABLE_METHODS


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    scope: RateLimitScope
    limit: int
    window_s: float


@dataclass(frozen=True, slots=True)
class InvalidationRule:
    event: str
    tags: tuple[Template, ...]


@dataclass(frozen=True, slots=True)
class CachePolicy:
    ttl_s: int = 0
    scope: CacheScope = "user"
    tags: tuple[Template, ...] = ()
    invalidate_on: tuple[InvalidationRule, ...] = ()
    cdn: bool = False  # shared entries also cached by a CDN (public, s-maxage, Surrogate-Key)

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An aggregate endpoint: a method, a path below the layer's base path, calls."""

    name: str
    method: str
    path: str  # relative to Layer.base_path; may hold {param} segments
    calls: tuple[Call, ...]
    response: Template
    purpose: str = ""
    timeout_ms: int = 3000
    cache: CachePolicy = CachePolicy()
    rate_limits: tuple[RateLimitRule, ...] = ()
    # the response contract (orchestration.response_contract): None, or a compiled
    # response_schema; a violation is logged and counted, and with "fail" answered 502
    response_contract: Any = None
    on_schema_violation: SchemaViolationAction = "log"
    stages: tuple[tuple[Call, ...], ...] = field(init=False)
    p99_target_ms: int | None = None  # the P99 alert's threshold; None: 80 % of timeout_ms

    def __post_init__(self) -> None:
        numbers = sorted({call.stage for call in self.calls})
        grouped = tuple(tuple(c for c in self.calls if c.stage == n) for n in numbers)
        object.__setattr__(self, "stages", grouped)

    @property
    def p99_target_s(self) -> float:
        """The P99 the alert holds the endpoint to, in seconds (exported in /metrics)."""
        target_ms = self.p99_target_ms if self.p99_target_ms is not None else self.timeout_ms * P99_TARGET_SHARE
        return target_ms / 1000


# Without an explicit ``p99_target_ms``, an endpoint's P99 target is this share of its deadline.
P99_TARGET_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class JwtSettings:
    algorithms: tuple[str, ...] = ("HS256",)
    secret_env: str | None = None
    public_key_file: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    user_claim: str = "sub"
    leeway_s: int = 0


@dataclass(frozen=True, slots=True)
class IntrospectionSettings:
    """OAuth2 token introspection (RFC 7662): the client credentials are env var names."""

    url: str
    client_id_env: str
    client_secret_env: str
    cache_s: int = 60
    user_claim: str = "sub"


@dataclass(frozen=True, slots=True)
class ClientAuth:
    type: ClientAuthKind = "none"  # with a list of types: the first of them
    jwt: JwtSettings | None = None
    api_key_header: str = "X-API-Key"
    introspection: IntrospectionSettings | None = None
    types: tuple[ClientAuthKind, ...] = ()  # a list in the file: the first whose credentials are carried decides

    @property
    def kinds(self) -> tuple[ClientAuthKind, ...]:
        return self.types or (self.type,)


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    base_path: str
    owner: str = ""
    transport: str = "rest"
    auth: ClientAuth = ClientAuth()
    rate_limits: tuple[RateLimitRule, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the gateway serves, at one configuration version."""

    version: str
    layer: Layer
    services: Mapping[str, Service]
    endpoints: tuple[Endpoint, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "services", MappingProxyType(dict(self.services)))
