"""Retry budget (Finagle, Envoy): retries to a service stay a share of its calls.

Over the last ``WINDOW_S`` seconds, the retries made to a service may be at most
``budget_percent`` % of the calls made to it (first attempts), but at least
``budget_min_per_s`` per second are always allowed, so a quiet service can still
retry. A retry over budget is not made (``retry.run_with_retry`` asks ``grant``).
So while a service fails everything, it receives at most (1 + budget) times the calls,
where plain retries would send it (1 + max_retries) times.

Counts live in one-second buckets. ``InProcessRetryBudgetStore`` keeps them per
process; ``RedisRetryBudgetStore`` shares them between the workers of a host.

A service's calls are counted by its ``BudgetGrant`` (one per client) and handed to the
store once per tick (the store's ``tick_s``: a second in process, half of one with Redis),
and before every retry decision, so a call costs an addition, not a store call (issue 14:
the features under 5 % CPU). What the store holds of this process is thus at most one tick
behind only for other clients' decisions (another worker), never for this one's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from orchestration.native_lock import allocate_lock
from orchestration.plan import RetryPolicy

WINDOW_S = 10


class RetryBudgetStore(Protocol):
    tick_s: float  # how often a ``BudgetGrant`` hands its calls over (divides a second)

    def on_call(self, service: str, now: float) -> None:
        """A call (its first attempt) is about to be made."""

    def add_calls(self, service: str, second: int, calls: int, now: float | None) -> None:
        """``calls`` calls were made in ``second``; shared at once when ``now`` is given, else
        with the next ``try_retry`` (which follows at once)."""

    def try_retry(self, service: str, policy: RetryPolicy, now: float) -> bool:
        """True, and the retry is counted, when the budget allows one more."""


class BudgetGrant:
    """``RetryGrant`` of a service with a retry budget (may one more retry or hedge go out
    now?) and the tally of its calls (``count_call``, once per call).

    The tally's tick is aligned on the wall clock and divides a second, so all its calls
    fall in one second's bucket. Under gevent nothing switches inside ``count_call``; in a
    threaded process two threads may count one call between them, which only makes the
    budget stricter by that call."""

    __slots__ = ("_calls", "_lock", "_per_s", "_policy", "_second", "_service", "_store", "_until", "_wall")

    def __init__(self, store: RetryBudgetStore, service: str, policy: RetryPolicy, wall: Callable[[], float]) -> None:
        self._store = store
        self._service = service
        self._policy = policy
        self._wall = wall
        self._per_s = 1.0 / store.tick_s
        self._lock = allocate_lock()
        self._calls = 0
        self._second = 0
        self._until = float("-inf")  # the end of the current tick

    def count_call(self) -> None:
        """A call (its first attempt) is about to be made."""
        now = self._wall()
        if now < self._until:
            self._calls += 1
        else:
            self._roll(now)

    def _roll(self, now: float) -> None:
        """A new tick: the last one's calls go to the store."""
        with self._lock:
            if now < self._until:  # another thread rolled it
                self._calls += 1
                return
            calls, second = self._calls, self._second
            self._calls, self._second = 1, int(now)
            self._until = (int(now * self._per_s) + 1) / self._per_s
        if calls:
            self._store.add_calls(self._service, second, calls, now)

    def __call__(self) -> bool:
        now = self._wall()
        with self._lock:
            calls, self._calls = self._calls, 0
        if calls:
            self._store.add_calls(self._service, self._second, calls, None)
        return self._store.try_retry(self._service, self._policy, now)


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

    tick_s = 1.0

    def __init__(self) -> None:
        self._services: dict[str, _Buckets] = {}
        self._lock = allocate_lock()

    def add_calls(self, service: str, second: int, calls: int, now: float | None = None) -> None:
        with self._lock:
            buckets = self._buckets(service)
            if second > buckets.latest:  # a new second: drop what left the window
                buckets.latest = second
                buckets.totals(second)
            buckets.calls[second] = buckets.calls.get(second, 0) + calls

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
