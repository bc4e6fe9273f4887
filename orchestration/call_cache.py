"""The per-call cache: one downstream answer kept for ``cache.ttl_s`` (contract section 10).

The key is a digest of the request as it would be sent: the service and its
base URL, the method, the rendered path, query, headers and body, and — when
the service receives the client's own credentials (``bearer_forward``) — a
digest of those credentials, so one user's answer is never served to another.
Entries live in the same store as the response cache (Redis when configured,
shared by every worker), so a webhook's tag purge deletes them too, and the
store's purge marks keep an answer fetched before a purge from being stored
after it. Only successful answers are stored; a store that cannot be reached
is bypassed (the call goes downstream), never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orchestration.downstream.request import RequestSpec
from orchestration.edge.cache_store import CacheStore, InProcessCacheStore
from orchestration.edge.cache_tags import render_tags
from orchestration.edge.redis_boundary import StoreUnavailable
from orchestration.outcome import Outcome, OutcomeKind
from orchestration.plan import Call, Service

logger = logging.getLogger(__name__)

StoreErrorListener = Callable[[str, Exception], None]


def call_cache_key(service: Service, spec: RequestSpec) -> str:
    """What the answer depends on; the client's credentials only when they are sent on."""
    owner = None
    if service.auth.type == "bearer_forward":
        owner = hashlib.sha256((spec.client_authorization or "").encode()).hexdigest()
    material = [
        "call",
        service.name,
        service.base_url,
        spec.method,
        spec.path,
        list(spec.params),
        sorted(spec.headers),
        spec.json_body if spec.has_body else "<no body>",
        owner,
    ]
    text = json.dumps(material, separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class CallCache:
    def __init__(
        self,
        store: CacheStore | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_store_error: StoreErrorListener | None = None,
    ) -> None:
        self._store: CacheStore = store if store is not None else InProcessCacheStore(clock=clock)
        self._clock = clock
        self._on_store_error = on_store_error or (lambda _store, _error: None)

    def now(self) -> float:
        """The wall clock a fill's start is stamped with (purge marks compare against it)."""
        return self._clock()

    def get(self, key: str) -> Outcome | None:
        """The stored answer as a successful outcome (no network, no attempt), or None."""
        try:
            entry = self._store.get(key)
        except StoreUnavailable as error:
            self._on_store_error("call_cache", error)
            return None
        if entry is None:
            return None
        try:
            stored = json.loads(entry.payload)
            return Outcome(OutcomeKind.OK, status=int(stored["status"]), body=stored["body"])
        except (ValueError, KeyError, TypeError):
            logger.warning("unreadable call cache entry ignored")
            return None

    def put(self, key: str, call: Call, outcome: Outcome, context: Mapping[str, Any], started_at: float) -> None:
        """Store a successful answer with its rendered tags; failures are never stored."""
        policy = call.cache
        if policy is None or not outcome.ok:
            return
        payload = json.dumps({"status": outcome.status or 200, "body": outcome.body}, separators=(",", ":"))
        tags: Sequence[str] = render_tags(policy.tags, context) if policy.tags else ()
        try:
            self._store.put(key, payload.encode(), ttl_s=policy.ttl_s, tags=tags, started_at=started_at)
        except StoreUnavailable as error:
            self._on_store_error("call_cache", error)
