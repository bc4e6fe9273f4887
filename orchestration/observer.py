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


@dataclass(frozen=True, slots=True)
class ResilienceDecision:
    """A resilience choice made for one call (contract section 7), for metrics and explain.

    ``decision`` is one of ``DECISIONS``; ``detail`` is for humans (logs, explain)."""

    endpoint: str
    service: str
    call_id: str
    decision: str
    detail: str = ""


# retry_after_waited: a 429/503's Retry-After set the wait before the next attempt;
# retry_after_past_deadline: it would have passed the deadline, so no retry was made;
# retry_over_budget: the service's retry budget was spent, so no retry was made;
# stale_served: an optional call failed and its last good result stood in (stale_if_error_s);
# hedge_fired: a second attempt was sent because the first had not answered after hedge.after_ms;
# hedge_won: that second attempt answered first (the first was cancelled);
# hedge_over_budget: the hedge was not sent, the service's retry budget being spent.
DECISIONS = (
    "retry_after_waited",
    "retry_after_past_deadline",
    "retry_over_budget",
    "stale_served",
    "hedge_fired",
    "hedge_won",
    "hedge_over_budget",
)


@dataclass(frozen=True, slots=True)
class SchemaViolation:
    """An assembled response that broke its endpoint's ``response_schema``."""

    endpoint: str
    field: str  # a stable label (response_contract.Violation.field)
    message: str
    failed: bool  # on_schema_violation: fail (the client got 502 CONTRACT_VIOLATION)


class Observer(Protocol):
    def on_attempt(self, observation: AttemptObservation) -> None: ...

    def on_breaker_transition(self, transition: BreakerTransition) -> None: ...

    def on_store_error(self, store: str, error: Exception) -> None: ...

    def on_decision(self, decision: ResilienceDecision) -> None: ...

    def on_schema_violation(self, violation: SchemaViolation) -> None: ...


class NullObserver:
    """The default: observe nothing."""

    def on_attempt(self, observation: AttemptObservation) -> None:
        return None

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        return None

    def on_store_error(self, store: str, error: Exception) -> None:
        return None

    def on_decision(self, decision: ResilienceDecision) -> None:
        return None

    def on_schema_violation(self, violation: SchemaViolation) -> None:
        return None
