"""The readiness answer, checked at most once per ``ttl_s`` per process.

``/readyz`` is unauthenticated, and each hit used to open a database connection
and a Redis connection: a flood of probes (or of anyone) became a flood of
connections. Here the answer is kept for ``ttl_s`` (a second by default: fresh
enough for any orchestrator, whose probes run every few seconds), and one caller
at a time refreshes it: concurrent hits during a check wait for its answer
instead of starting their own (under gevent the lock is a cooperative one).
The checks themselves are plain callables, so the caller decides how they reach
the database and Redis: orchestration/web/health.py keeps one database connection
for the probe alone and pings over the process's shared Redis client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from orchestration.clock import Clock

Check = Callable[[], bool]
DEFAULT_TTL_S = 1.0


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each check's state ("ok" or "unreachable"), in the order the checks were given."""

    checks: Mapping[str, str]

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(name for name, state in self.checks.items() if state != "ok")


class ReadinessProbe:
    def __init__(self, checks: Mapping[str, Check], *, clock: Clock, ttl_s: float = DEFAULT_TTL_S) -> None:
        self._checks = dict(checks)
        self._clock = clock
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._answer: Readiness | None = None
        self._expires_at = 0.0

    def current(self) -> Readiness:
        answer = self._fresh()
        if answer is not None:
            return answer
        with self._lock:
            answer = self._fresh()  # another caller refreshed it while this one waited
            if answer is None:
                answer = Readiness({name: "ok" if check() else "unreachable" for name, check in self._checks.items()})
                self._answer, self._expires_at = answer, self._clock.monotonic() + self._ttl_s
        return answer

    def close(self) -> None:
        """Let go of what the checks hold (those with a ``close``: a database connection)."""
        with self._lock:
            for check in self._checks.values():
                close = getattr(check, "close", None)
                if close is not None:
                    close()

    def _fresh(self) -> Readiness | None:
        return self._answer if self._answer is not None and self._clock.monotonic() < self._expires_at else None
