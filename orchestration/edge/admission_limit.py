"""How many aggregate requests a worker may run at once: an AIMD limit driven by
event-loop lag (pure; the clock is injected, nothing here sleeps or imports gevent).

A gevent worker is I/O-bound until its CPU saturates; then every ready greenlet
waits longer for its turn, which shows as *lag*: a timer meant to fire in 20 ms
fires late. Past that point running more requests at once only makes each of
them slower, until attempts time out on answers that have already arrived and
breakers open on healthy services. So, once per period:

- lag above ``lag_threshold_s`` → multiplicative decrease
  (``limit = max(minimum, floor(limit * decrease_factor))``);
- otherwise, if the limit was reached during the period (a request waited, or
  in-flight hit the limit) → additive increase (``+ increase_step``, up to
  ``ceiling``);
- otherwise the limit stays: an idle worker does not grow a limit it never used.

``observe_lag`` receives the measurements (the worst of a period counts),
``note_saturated`` the gate's "the limit was reached", and ``adjust`` applies the
rule when a period has passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    initial: int = 16
    minimum: int = 2
    ceiling: int = 1000
    lag_threshold_s: float = 0.030
    period_s: float = 0.100
    decrease_factor: float = 0.75
    increase_step: int = 2

    def __post_init__(self) -> None:
        if self.minimum < 1:
            raise ValueError("minimum must be at least 1")
        if not 0 < self.decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")
        if self.increase_step < 1 or self.period_s <= 0:
            raise ValueError("increase_step and period_s must be positive")


@dataclass(frozen=True, slots=True)
class Adjustment:
    """What one period decided (for logs and tests)."""

    limit: int
    previous: int
    lag_s: float
    saturated: bool


class AdaptiveLimit:
    """Not thread-safe: the caller (the admission gate) serialises calls."""

    def __init__(self, policy: LimitPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self.ceiling = max(policy.ceiling, policy.minimum)
        self.limit = min(max(policy.initial, policy.minimum), self.ceiling)
        self._period_start = clock()
        self._worst_lag_s = 0.0
        self._saturated = False

    def observe_lag(self, lag_s: float) -> None:
        if lag_s > self._worst_lag_s:
            self._worst_lag_s = lag_s

    def note_saturated(self) -> None:
        self._saturated = True

    def adjust(self) -> Adjustment | None:
        """Apply the rule if a period has passed since the last one; None otherwise."""
        now = self._clock()
        if now - self._period_start < self.policy.period_s:
            return None
        lag_s, saturated, previous = self._worst_lag_s, self._saturated, self.limit
        self._period_start, self._worst_lag_s, self._saturated = now, 0.0, False
        if lag_s > self.policy.lag_threshold_s:
            self.limit = max(self.policy.minimum, math.floor(self.limit * self.policy.decrease_factor))
        elif saturated:
            self.limit = min(self.ceiling, self.limit + self.policy.increase_step)
        return Adjustment(limit=self.limit, previous=previous, lag_s=lag_s, saturated=saturated)
