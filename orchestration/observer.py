"""What the engine reports as it works: one protocol, a no-op default.

Metrics, tracing and logs plug in here (``orchestration`` itself stays free of
Prometheus and OpenTelemetry). Subclass ``NullObserver`` and override what you
need; the engine calls these from request greenlets, so keep them quick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from orchestration.outcome import OutcomeKind


@dataclass(frozen=True, slots=True)
class AttemptObservation:
    """One attempt at one downstream call (retries are separate attempts)."""

    endpoint: str
    service: str
    call_id: str
    attempt: int  # 1 for the first try
    kind: OutcomeKind
    duration_s: float
    status: int | None


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """A breaker changed state; tests assert the sequence, ops log and count them."""

    service: str
    from_state: str
    to_state: str
    reason: str
    at: float  # wall-clock seconds


class Observer(Protocol):
    def on_attempt(self, observation: AttemptObservation) -> None: ...

    def on_breaker_transition(self, transition: BreakerTransition) -> None: ...

    def on_store_error(self, store: str, error: Exception) -> None: ...


class NullObserver:
    """The default: observe nothing."""

    def on_attempt(self, observation: AttemptObservation) -> None:
        return None

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        return None

    def on_store_error(self, store: str, error: Exception) -> None:
        return None
