"""Time as a seam: the engine never reads the system clock directly.

Two readings are needed. ``monotonic`` measures deadlines and durations inside one
process; ``wall`` stamps shared state (breaker failures, open times) that several
processes compare through Redis, where a monotonic reading would mean nothing.
``sleep`` is here too, so a fake clock can record backoff delays and move time
instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock (``time.sleep`` yields to other greenlets under gevent).

    ``monotonic`` and ``wall`` are the ``time`` functions themselves, not methods calling
    them: every attempt reads the clock several times, and a Python frame per reading
    was a measurable share of the resilience features' cost (issue 14)."""

    monotonic = staticmethod(time.monotonic)
    wall = staticmethod(time.time)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to; ``sleep`` records and advances."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on a clock's monotonic scale that work must not go past."""

    clock: Clock
    expires_at: float

    @classmethod
    def after(cls, clock: Clock, seconds: float) -> Deadline:
        return cls(clock, clock.monotonic() + seconds)

    def remaining(self) -> float:
        return self.expires_at - self.clock.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0
