"""Bulkhead: at most ``max_concurrent`` calls to one service in flight per process.

Each service gets its own semaphore, so a slow service fills only its own
slots and cannot starve calls to the others. A caller that finds no slot waits
up to ``max_wait_ms`` (never past its attempt's time) and then gives up at
once. In a gevent-patched worker the semaphore is gevent's own, so waiting
yields to other greenlets: monkey-patching does not replace
``threading.BoundedSemaphore``, which stays a ``Condition`` over a patched lock
whose every ``release`` probes that lock with a non-blocking acquire that fails,
and gevent answers a failed non-blocking acquire by yielding to the hub.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from orchestration.plan import BulkheadPolicy


def _bounded_semaphore(value: int) -> Any:
    """gevent's semaphore where gevent has patched threading, the standard library's elsewhere."""
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return threading.BoundedSemaphore(value)
    if monkey.is_module_patched("threading"):
        from gevent.lock import BoundedSemaphore

        return BoundedSemaphore(value)
    return threading.BoundedSemaphore(value)


class Waiter(Protocol):
    def waiting(self) -> None:
        """About to wait for a slot."""


class Bulkhead:
    def __init__(self, policy: BulkheadPolicy) -> None:
        self.max_concurrent = policy.max_concurrent
        self._max_wait_s = policy.max_wait_ms / 1000
        self._slots = _bounded_semaphore(policy.max_concurrent)
        self._lock = threading.Lock()
        self._in_flight = 0

    def try_enter(self, budget_s: float, waiter: Waiter | None = None) -> bool:
        """Take a slot, waiting at most ``min(max_wait_ms, budget_s)``; ``waiter.waiting()`` is
        called first when there is a wait (a hedged attempt arms its timer: ``resilience.hedge``)."""
        wait_s = min(self._max_wait_s, max(0.0, budget_s))
        entered: bool = self._slots.acquire(blocking=False)
        if not entered and wait_s > 0:
            if waiter is not None:
                waiter.waiting()
            entered = self._slots.acquire(timeout=wait_s)
        if entered:
            with self._lock:
                self._in_flight += 1
        return entered

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1
        self._slots.release()

    @property
    def in_flight(self) -> int:
        return self._in_flight
