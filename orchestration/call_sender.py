"""One call's request, through the per-call cache and in-flight dedupe, then downstream.

    cache (call.cache) ── hit ──▶ the stored answer (no attempt, no network)
        │ miss
        ▼
    dedupe (service.dedupe, GET or idempotent) ── identical request in flight ──▶ its outcome
        │ first
        ▼
    fetch (retries, breaker, bulkhead, deadline) ──▶ stored when it succeeded

The leader of a deduped request stores the answer once for every follower.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestration import explain
from orchestration.call_cache import CallCache, call_cache_key
from orchestration.clock import Deadline
from orchestration.downstream.dedupe import InFlightRequests, dedupe_key
from orchestration.downstream.request import RequestSpec
from orchestration.outcome import Outcome
from orchestration.plan import Call, Service

_SAFE_METHODS = frozenset({"GET", "HEAD"})


class CallSender:
    def __init__(self, cache: CallCache, in_flight: InFlightRequests | None = None) -> None:
        self.cache = cache
        self.in_flight = in_flight or InFlightRequests()

    def send(
        self,
        service: Service,
        call: Call,
        spec: RequestSpec,
        context: Mapping[str, Any],
        deadline: Deadline,
        fetch: Callable[[], Outcome],
    ) -> Outcome:
        if call.cache is None and not service.dedupe:
            return fetch()  # the common case: nothing to look up
        key = call_cache_key(service, spec) if call.cache is not None else ""
        if key:
            hit = self.cache.get(key)
            if hit is not None:
                explain.note(call.id, "cache", hit)
                return hit

        def fill() -> Outcome:
            started_at = self.cache.now()
            outcome = fetch()
            if key:
                self.cache.put(key, call, outcome, context, started_at)
            return outcome

        if service.dedupe and (call.method in _SAFE_METHODS or call.idempotent):
            waited_from = deadline.remaining()
            outcome, shared = self.in_flight.do(dedupe_key(service.name, spec), fill, wait_s=waited_from)
            if shared:  # a follower: no attempt of its own, the leader's answer
                explain.note(call.id, "shared", outcome, max(0.0, waited_from - deadline.remaining()))
            return outcome
        return fill()
