"""Where breaker state lives: a small protocol and the in-process store.

The in-process store is the embedded default (one process, no Redis) and the
reference the Redis store is tested against. Both apply the rules of
``breaker.py``; the store only decides where the ``BreakerRecord`` lives and how
a change is made atomic (here: one lock).
"""

from __future__ import annotations

import threading
from typing import Protocol

from orchestration.plan import BreakerPolicy
from orchestration.resilience import breaker
from orchestration.resilience.breaker import AdminAction, BreakerRecord, BreakerSnapshot, Change, Permit


class BreakerStore(Protocol):
    def acquire(self, service: str, policy: BreakerPolicy, now: float) -> tuple[Permit, list[Change]]: ...

    def record(self, service: str, policy: BreakerPolicy, permit: Permit, failed: bool, now: float) -> list[Change]: ...

    def release(self, service: str, policy: BreakerPolicy, permit: Permit) -> None: ...

    def snapshot(self, service: str, policy: BreakerPolicy, now: float) -> BreakerSnapshot: ...

    def administer(self, service: str, action: AdminAction, now: float) -> list[Change]: ...


class InProcessBreakerStore:
    """Breaker records in a dict, one lock for every change (changes are tiny)."""

    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def acquire(self, service: str, policy: BreakerPolicy, now: float) -> tuple[Permit, list[Change]]:
        with self._lock:
            return breaker.acquire(self._record(service), policy, now)

    def record(self, service: str, policy: BreakerPolicy, permit: Permit, failed: bool, now: float) -> list[Change]:
        with self._lock:
            return breaker.record_outcome(self._record(service), policy, permit, failed, now)

    def release(self, service: str, policy: BreakerPolicy, permit: Permit) -> None:
        with self._lock:
            breaker.release(self._record(service), permit)

    def snapshot(self, service: str, policy: BreakerPolicy, now: float) -> BreakerSnapshot:
        with self._lock:
            return breaker.snapshot(service, self._record(service), policy, now)

    def administer(self, service: str, action: AdminAction, now: float) -> list[Change]:
        with self._lock:
            return breaker.administer(self._record(service), action, now)

    def _record(self, service: str) -> BreakerRecord:
        record = self._records.get(service)
        if record is None:
            record = self._records[service] = BreakerRecord()
        return record
