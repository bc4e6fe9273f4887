"""Explain a run: what every call of one request did, and when (contract section 6).

An explained request carries an ``ExplainRecorder`` in a contextvar; the
engine's greenlets start in a copy of the request's context (``spawn``), so
``ExplainObserver`` — wrapped around the runtime's observer once — finds the
recorder from any call and adds each attempt to it. Requests that are not
explained pay one contextvar read per attempt and nothing else.

``call_timings`` turns the attempts into the waterfall (console) and
``server_timing`` into the ``Server-Timing`` header.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from orchestration.observer import (
    AttemptObservation,
    BreakerTransition,
    Observer,
    ResilienceDecision,
    SchemaViolation,
)
from orchestration.outcome import OutcomeKind
from orchestration.plan import Endpoint


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    number: int
    kind: OutcomeKind
    status: int | None
    duration_s: float
    ended_s: float  # since the recorder started

    @property
    def outcome(self) -> str:
        """``200``, ``503``, ``timeout``, ``circuit_open``..."""
        if self.kind in (OutcomeKind.OK, OutcomeKind.BAD_STATUS) and self.status is not None:
            return str(self.status)
        return self.kind.value


@dataclass(slots=True)
class ExplainRecorder:
    """The attempts of one explained request, by call id, in the order they ended."""

    clock: Callable[[], float] = time.perf_counter
    started: float = 0.0
    attempts: dict[str, list[AttemptRecord]] = field(default_factory=dict)
    endpoint: str = ""  # the endpoint whose calls were recorded

    def __post_init__(self) -> None:
        self.started = self.clock()

    def add(self, observation: AttemptObservation) -> None:
        record = AttemptRecord(
            observation.attempt,
            observation.kind,
            observation.status,
            observation.duration_s,
            self.clock() - self.started,
        )
        self.attempts.setdefault(observation.call_id, []).append(record)
        self.endpoint = observation.endpoint

    def elapsed_s(self) -> float:
        return self.clock() - self.started


_current: ContextVar[ExplainRecorder | None] = ContextVar("gateway_explain", default=None)


@contextmanager
def recording(recorder: ExplainRecorder) -> Iterator[ExplainRecorder]:
    """Record every attempt made in this context (and the greenlets it spawns)."""
    token = _current.set(recorder)
    try:
        yield recorder
    finally:
        _current.reset(token)


def explaining() -> bool:
    return _current.get() is not None


class ExplainObserver:
    """Passes everything to ``inner``; attempts of an explained request also go to its recorder."""

    def __init__(self, inner: Observer) -> None:
        self._inner = inner

    def on_attempt(self, observation: AttemptObservation) -> None:
        self._inner.on_attempt(observation)
        recorder = _current.get()
        if recorder is not None:
            recorder.add(observation)

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        self._inner.on_breaker_transition(transition)

    def on_store_error(self, store: str, error: Exception) -> None:
        self._inner.on_store_error(store, error)

    def on_decision(self, decision: ResilienceDecision) -> None:
        self._inner.on_decision(decision)

    def on_schema_violation(self, violation: SchemaViolation) -> None:
        self._inner.on_schema_violation(violation)


@dataclass(frozen=True, slots=True)
class CallTiming:
    """One call of the waterfall."""

    call_id: str
    service: str
    stage: int  # 1.. in run order
    required: bool
    start_ms: float
    duration_ms: float
    outcome: str  # the last attempt's: a status or a failure kind; "timeout" when never finished
    attempts: tuple[AttemptRecord, ...]
    fallback: bool
    breaker_open: bool
    cache: bool

    @property
    def network_attempts(self) -> int:
        return sum(1 for a in self.attempts if a.kind not in _NO_NETWORK)


_NO_NETWORK = frozenset({OutcomeKind.CIRCUIT_OPEN, OutcomeKind.BULKHEAD_FULL, OutcomeKind.MISCONFIGURED})


def call_timings(
    endpoint: Endpoint, recorder: ExplainRecorder, *, failed: bool, cached: bool
) -> tuple[CallTiming, ...]:
    """The calls that ran (or fell back), in the endpoint's order.

    ``failed``: the run ended in a required failure (calls not reached are left out);
    ``cached``: the answer came from the response cache (no call ran).
    """
    timings: list[CallTiming] = []
    for stage_number, stage in enumerate(endpoint.stages, start=1):
        for call in stage:
            attempts = tuple(recorder.attempts.get(call.id, ()))
            if cached:
                timings.append(
                    CallTiming(
                        call.id, call.service, stage_number, call.required, 0.0, 0.0, "200", (), False, False, True
                    )
                )
                continue
            if not attempts:
                if failed or call.required:
                    continue  # never started: an earlier required call failed
                # The deadline passed before it could finish: it fell back.
                timings.append(
                    CallTiming(
                        call.id, call.service, stage_number, call.required, 0.0, 0.0, "timeout", (), True, False, False
                    )
                )
                continue
            first, last = attempts[0], attempts[-1]
            start_s = max(0.0, first.ended_s - first.duration_s)
            ok = last.kind is OutcomeKind.OK
            timings.append(
                CallTiming(
                    call.id,
                    call.service,
                    stage_number,
                    call.required,
                    start_s * 1000,
                    (last.ended_s - start_s) * 1000,
                    last.outcome,
                    attempts,
                    fallback=not ok and not call.required,
                    breaker_open=any(a.kind is OutcomeKind.CIRCUIT_OPEN for a in attempts),
                    cache=False,
                )
            )
    return tuple(timings)


def server_timing(total_ms: float, timings: tuple[CallTiming, ...]) -> str:
    """``total;dur=12.3, cart;dur=4.5;desc="cart 200 attempts=1"`` (contract section 6)."""
    entries = [f"total;dur={total_ms:.1f}"]
    for timing in timings:
        flags = "".join(
            f" {flag}"
            for flag, on in (
                ("fallback", timing.fallback),
                ("breaker-open", timing.breaker_open),
                ("cache", timing.cache),
            )
            if on
        )
        desc = f"{timing.service} {timing.outcome} attempts={timing.network_attempts}{flags}"
        entries.append(f'{timing.call_id};dur={timing.duration_ms:.1f};desc="{desc}"')
    return ", ".join(entries)
