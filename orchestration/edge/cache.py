"""The response cache: lookup, one fill per key, headers a CDN understands.

    fetch ──▶ get ── hit ──▶ HIT (Age, max-age = remaining TTL)
               │ miss
               ▼
           single flight (per process) ── followers wait, then re-read ──▶ HIT
               │ leader
               ▼
           fill lock (per key, shared) ── held elsewhere: poll for the value ──▶ HIT
               │ acquired (or the wait ran out)
               ▼
           run ──▶ storable? (full 200) ── yes: put with rendered tags ──▶ MISS
                                         └ no (error, partial): no-store ──▶ MISS

Only a full success is stored; errors and partial responses never are. Any
store failure (Redis down) bypasses the cache for that request: the run's
answer is served uncached, counted, never turned into an error. The cache
knows nothing of HTTP requests or the executor: the caller gives it a key,
the endpoint's policy, a ``run`` function and a ``storable`` classifier.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from orchestration.edge.cache_store import CacheStore, StoredEntry
from orchestration.edge.cache_tags import render_tags
from orchestration.edge.cdn import cdn_headers
from orchestration.edge.edge_metrics import EdgeMetrics, NullEdgeMetrics
from orchestration.edge.redis_boundary import StoreUnavailable
from orchestration.edge.single_flight import SingleFlight
from orchestration.plan import CachePolicy, CacheScope

logger = logging.getLogger(__name__)

R = TypeVar("R")

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Storable:
    """A run's answer that may be stored: the body, and what its tags render over."""

    body: Any
    tag_context: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CacheRequest:
    key: str  # from ``cache_key``
    endpoint: str
    policy: CachePolicy
    run_budget_s: float  # the endpoint's deadline: how long a fill may hold the key
    # Clients authenticate to the endpoint: even its shared entries are ``private`` to
    # caches other than ours, which cannot tell whether a request would be admitted.
    client_auth: bool = True


@dataclass(frozen=True, slots=True)
class CacheAnswer(Generic[R]):
    headers: Mapping[str, str] = field(default_factory=dict)
    hit: bool = False
    body: Any = None  # the cached body, when ``hit``
    result: R | None = None  # the run's result, when not ``hit``


def is_cacheable(policy: CachePolicy, *, endpoint_method: str, request_method: str) -> bool:
    return policy.enabled and endpoint_method == "GET" and request_method in CACHEABLE_METHODS


def cache_key(
    *,
    namespace: str,
    endpoint: str,
    path_params: Mapping[str, str],
    query: Mapping[str, str],
    scope: CacheScope,
    user_id: str | None,
) -> str:
    """A digest of what the response depends on; the user only for ``scope: user``."""
    owner = ["user", user_id] if scope == "user" else ["shared"]
    material = [namespace, endpoint, sorted(path_params.items()), sorted(query.items()), owner]
    return hashlib.sha256(json.dumps(material, separators=(",", ":")).encode()).hexdigest()


class ResponseCache:
    def __init__(
        self,
        store: CacheStore,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        metrics: EdgeMetrics | None = None,
        poll_s: float = 0.025,
    ) -> None:
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._metrics: EdgeMetrics = metrics or NullEdgeMetrics()
        self._poll_s = poll_s
        self._flight: SingleFlight[CacheAnswer[Any]] = SingleFlight()

    def fetch(
        self, request: CacheRequest, run: Callable[[], R], storable: Callable[[R], Storable | None]
    ) -> CacheAnswer[R]:
        try:
            hit = self._lookup(request)
        except StoreUnavailable as error:
            self._metrics.on_store_error("cache", error)
            return self._run(request, run, storable, store=False)
        self._metrics.on_cache_lookup(request.endpoint, hit is not None)
        if hit is not None:
            return hit
        answer, shared = self._flight.do(
            request.key, lambda: self._fill(request, run, storable), wait_s=request.run_budget_s
        )
        return self._reread(request, answer) if shared else answer

    def purge(self, tags: tuple[str, ...]) -> int:
        """Delete every entry carrying any of ``tags`` (raises ``StoreUnavailable``)."""
        return self._store.purge(tags)

    def _lookup(self, request: CacheRequest) -> CacheAnswer[Any] | None:
        entry = self._store.get(request.key)
        return None if entry is None else _hit(request, entry)

    def _reread(self, request: CacheRequest, leaders: CacheAnswer[R]) -> CacheAnswer[R]:
        """A follower serves the entry the leader stored (with its Age), or shares its answer."""
        try:
            return self._lookup(request) or leaders
        except StoreUnavailable:
            return leaders

    def _fill(self, request: CacheRequest, run: Callable[[], R], storable: Callable[[R], Storable | None]) -> Any:
        token = uuid.uuid4().hex
        try:
            locked = self._store.try_lock(request.key, token, request.run_budget_s)
            if not locked:
                waited = self._wait_for_other_fill(request, token)
                if isinstance(waited, CacheAnswer):
                    return waited
                locked = waited
        except StoreUnavailable as error:
            self._metrics.on_store_error("cache", error)
            return self._run(request, run, storable, store=False)
        try:
            return self._run(request, run, storable, store=True)
        finally:
            if locked:
                self._release(request.key, token)

    def _wait_for_other_fill(self, request: CacheRequest, token: str) -> CacheAnswer[Any] | bool:
        """Another process is filling the key: its value (a hit), or whether we now hold the lock."""
        for _ in range(max(1, math.ceil(request.run_budget_s / self._poll_s))):
            self._sleep(self._poll_s)
            hit = self._lookup(request)
            if hit is not None:
                return hit
            if self._store.try_lock(request.key, token, request.run_budget_s):
                return True  # the other fill ended without storing: run it ourselves
        return False

    def _run(
        self, request: CacheRequest, run: Callable[[], R], storable: Callable[[R], Storable | None], *, store: bool
    ) -> CacheAnswer[R]:
        started_at = self._clock()
        result = run()
        fresh = storable(result)
        if fresh is None:
            return CacheAnswer(headers=_no_store_headers(), result=result)
        if store:
            self._put(request, fresh, started_at)
        headers = _miss_headers(request)
        if _cdn(request):
            headers |= cdn_headers(render_tags(request.policy.tags, fresh.tag_context), request.policy.ttl_s)
        return CacheAnswer(headers=headers, result=result)

    def _put(self, request: CacheRequest, fresh: Storable, started_at: float) -> None:
        policy = request.policy
        tags = render_tags(policy.tags, fresh.tag_context)
        stored_form: dict[str, Any] = {"body": fresh.body, "ttl_s": policy.ttl_s}
        if _cdn(request):
            stored_form["tags"] = list(tags)  # a hit repeats them in Surrogate-Key / Cache-Tag
        payload = json.dumps(stored_form, separators=(",", ":")).encode()
        try:
            stored = self._store.put(request.key, payload, ttl_s=policy.ttl_s, tags=tags, started_at=started_at)
        except StoreUnavailable as error:
            self._metrics.on_store_error("cache", error)
            return
        if not stored:
            logger.info("not caching %s: a tag was purged while it ran", request.endpoint)

    def _release(self, key: str, token: str) -> None:
        try:
            self._store.unlock(key, token)
        except StoreUnavailable as error:
            self._metrics.on_store_error("cache", error)  # the lock expires on its own


def _cdn(request: CacheRequest) -> bool:
    """A CDN may keep it: ``cdn: true`` on a shared entry (``gateway check`` refuses the rest)."""
    return request.policy.cdn and request.policy.scope == "shared"


def _visibility(request: CacheRequest) -> str:
    """``public`` only for an answer that is the same for every client who may ask."""
    return "public" if request.policy.scope == "shared" and not request.client_auth else "private"


def _hit(request: CacheRequest, entry: StoredEntry) -> CacheAnswer[Any] | None:
    try:
        stored = json.loads(entry.payload)
        body, ttl_s = stored["body"], float(stored["ttl_s"])
        tags = [str(tag) for tag in stored.get("tags", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        logger.warning("unreadable cache entry ignored")
        return None
    age_s = max(0, math.floor(ttl_s - entry.ttl_remaining_s))
    max_age = max(0, math.floor(entry.ttl_remaining_s))
    headers = {
        "X-Cache": "HIT",
        "Cache-Control": f"{_visibility(request)}, max-age={max_age}",
        "Age": str(age_s),
    }
    if _cdn(request):
        headers |= cdn_headers(tags, max_age)
    return CacheAnswer(headers=headers, hit=True, body=body)


def _miss_headers(request: CacheRequest) -> dict[str, str]:
    max_age = request.policy.ttl_s
    return {"X-Cache": "MISS", "Cache-Control": f"{_visibility(request)}, max-age={max_age}", "Age": "0"}


def _no_store_headers() -> dict[str, str]:
    return {"X-Cache": "MISS", "Cache-Control": "no-store"}
