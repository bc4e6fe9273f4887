"""Retry budget (Finagle, Envoy): retries to a service stay a share of its calls.

Over the last ``WINDOW_S`` seconds, the retries made to a service may be at most
``budget_percent`` % of the calls made to it (first attempts), but at least
``budget_min_per_s`` per second are always allowed, so a quiet service can still
retry. A retry over budget is not made (``retry.run_with_retry`` asks ``grant``).
So while a service fails everything, it receives at most (1 + budget) times the calls,
where plain retries would send it (1 + max_retries) times.

Counts live in one-second buckets. ``InProcessRetryBudgetStore`` keeps them per
process; ``RedisRetryBudgetStore`` shares them between the workers of a host.
"""

from __future__ import annotations

from typing import Protocol

from orchestration.native_lock import allocate_lock
from orchestration.plan import RetryPolicy

WINDOW_S = 10


class RetryBudgetStore(Protocol):
    def on_call(self, service: str, now: float) -> None:
        """A call (its first attempt) is about to be made."""

    def try_retry(self, service: str, policy: RetryPolicy, now: float) -> bool:
        """True, and the retry is counted, when the budget allows one more."""


def allowed_retries(policy: RetryPolicy, calls: int) -> float:
    """How many retries ``calls`` calls within the window earn."""
    percent = policy.budget_percent or 0.0
    minimum = (policy.budget_min_per_s or 0.0) * WINDOW_S
    return max(percent / 100 * calls, minimum)


class _Buckets:
    """Calls and retries per whole second, for the last ``WINDOW_S`` seconds."""

    __slots__ = ("calls", "latest", "retries")

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}
        self.retries: dict[int, int] = {}
        self.latest = 0  # the newest second a call was counted in

    def add_call(self, second: int) -> None:
        if second != self.latest:  # a new second: drop what left the window (a service never retried kept all)
            self.latest = second
            self.totals(second)
        self.calls[second] = self.calls.get(second, 0) + 1

    def totals(self, second: int) -> tuple[int, int]:
        horizon = second - WINDOW_S
        for counts in (self.calls, self.retries):
            for old in [s for s in counts if s <= horizon]:
                del counts[old]
        return sum(self.calls.values()), sum(self.retries.values())


class InProcessRetryBudgetStore:
    """Its lock is the OS's (``native_lock``): nothing waits while holding it, and
    ``on_call`` runs on every call of a service with a budget."""

    def __init__(self) -> None:
        self._services: dict[str, _Buckets] = {}
        self._lock = allocate_lock()

    def on_call(self, service: str, now: float) -> None:
        second = int(now)
        with self._lock:
            buckets = self._services.get(service)
            if buckets is None:
                buckets = self._services[service] = _Buckets()
            if second != buckets.latest:
                buckets.add_call(second)
            else:  # ``add_call``'s common case, inlined: this runs on every call
                calls = buckets.calls
                calls[second] = calls.get(second, 0) + 1

    def try_retry(self, service: str, policy: RetryPolicy, now: float) -> bool:
        second = int(now)
        with self._lock:
            buckets = self._buckets(service)
            calls, retries = buckets.totals(second)
            if retries >= allowed_retries(policy, calls):
                return False
            buckets.retries[second] = buckets.retries.get(second, 0) + 1
            return True

    def _buckets(self, service: str) -> _Buckets:
        buckets = self._services.get(service)
        if buckets is None:
            buckets = self._services[service] = _Buckets()
        return buckets
