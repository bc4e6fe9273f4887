"""Explain a run: what every call of one request did, and when (contract section 6).

An explained request carries an ``ExplainRecorder`` in a contextvar; the
engine's greenlets start in a copy of the request's context (``spawn``), so
``ExplainObserver`` — wrapped around the runtime's observer once — finds the
recorder from any call and adds each attempt to it. Requests that are not
explained pay one contextvar read per attempt and nothing else.

``call_timings`` turns the attempts into the waterfall (console) and
``server_timing`` into the ``Server-Timing`` header.

Besides attempts the engine notes what made no attempt of its own (``note``):
a call skipped by its ``when``, a per-call cache hit, a dedupe follower that
shared another request's answer, a ``for_each`` refused; a ``for_each`` call's
element count (``note_elements``) and, through ``element``, which element each
attempt belongs to (one waterfall row per element); and every resilience
decision (``on_decision``: retry over budget, Retry-After waited...).
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
from orchestration.outcome import Outcome, OutcomeKind
from orchestration.plan import Endpoint


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    number: int
    kind: OutcomeKind
    status: int | None
    duration_s: float
    ended_s: float  # since the recorder started
    via: str = ""  # "" a network attempt; "cache", "shared", "refused": an answer without one
    element: int | None = None  # a for_each call's element (its index)

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
    skipped: set[str] = field(default_factory=set)  # calls whose ``when`` was not truthy
    elements: dict[str, int] = field(default_factory=dict)  # for_each calls: how many elements
    decisions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # call id: (decision, detail)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def add(self, observation: AttemptObservation) -> None:
        record = AttemptRecord(
            observation.attempt,
            observation.kind,
            observation.status,
            observation.duration_s,
            self.clock() - self.started,
            element=_element.get(),
        )
        self.attempts.setdefault(observation.call_id, []).append(record)
        self.endpoint = observation.endpoint

    def note(self, call_id: str, via: str, outcome: Outcome, duration_s: float) -> None:
        ended = self.clock() - self.started
        record = AttemptRecord(0, outcome.kind, outcome.status, duration_s, ended, via, _element.get())
        self.attempts.setdefault(call_id, []).append(record)

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


_element: ContextVar[int | None] = ContextVar("gateway_explain_element", default=None)


@contextmanager
def element(index: int) -> Iterator[None]:
    """The attempts made inside belong to element ``index`` of a for_each call."""
    if _current.get() is None:
        yield
        return
    token = _element.set(index)
    try:
        yield
    finally:
        _element.reset(token)


def note(call_id: str, via: str, outcome: Outcome, duration_s: float = 0.0) -> None:
    """An answer that made no attempt of its own: ``cache``, ``shared`` (dedupe), ``refused``."""
    recorder = _current.get()
    if recorder is not None:
        recorder.note(call_id, via, outcome, duration_s)


def note_skipped(call_id: str) -> None:
    recorder = _current.get()
    if recorder is not None:
        recorder.skipped.add(call_id)


def note_elements(call_id: str, count: int) -> None:
    recorder = _current.get()
    if recorder is not None:
        recorder.elements[call_id] = count


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
        recorder = _current.get()
        if recorder is not None:
            recorder.decisions.setdefault(decision.call_id, []).append((decision.decision, decision.detail))

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
    skipped: bool = False  # its ``when`` was not truthy: no request
    shared: bool = False  # a dedupe follower: another request's answer
    elements: int | None = None  # a for_each call: its element count
    decisions: tuple[tuple[str, str], ...] = ()  # resilience decisions: (decision, detail)

    @property
    def network_attempts(self) -> int:
        return sum(1 for a in self.attempts if a.number > 0 and a.kind not in _NO_NETWORK)


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
            if call.id in recorder.skipped and not cached:
                timings.append(
                    CallTiming(
                        call.id, call.service, stage_number, call.required, 0.0, 0.0, "skipped", (), False, False,
                        False, skipped=True,
                    )
                )  # fmt: skip
                continue
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
            first = min(attempts, key=lambda a: a.ended_s - a.duration_s)
            last = _deciding(attempts)
            start_s = max(0.0, first.ended_s - first.duration_s)
            ended_s = max(a.ended_s for a in attempts)
            ok = last.kind is OutcomeKind.OK
            elements = recorder.elements.get(call.id)
            timings.append(
                CallTiming(
                    call.id,
                    call.service,
                    stage_number,
                    call.required,
                    start_s * 1000,
                    (ended_s - start_s) * 1000,
                    last.outcome,
                    attempts,
                    fallback=not ok and not call.required and elements is None,
                    breaker_open=any(a.kind is OutcomeKind.CIRCUIT_OPEN for a in attempts),
                    cache=any(a.via == "cache" for a in attempts),
                    shared=any(a.via == "shared" for a in attempts),
                    elements=elements,
                    decisions=tuple(recorder.decisions.get(call.id, ())),
                )
            )
    return tuple(timings)


def _deciding(attempts: tuple[AttemptRecord, ...]) -> AttemptRecord:
    """The record that says how the call ended: its last; for a for_each call, the
    first element (in element order) whose last record failed, else the last."""
    finals: dict[int | None, AttemptRecord] = {}
    for record in attempts:
        finals[record.element] = record
    failed = [
        finals[key]
        for key in sorted(finals, key=lambda k: -1 if k is None else k)
        if finals[key].kind is not OutcomeKind.OK
    ]
    return failed[0] if failed else attempts[-1]


def element_timings(timing: CallTiming) -> tuple[CallTiming, ...]:
    """A for_each call's waterfall: one row per element (``products[0]``...), in element order."""
    if timing.elements is None:
        return ()
    by_element: dict[int, list[AttemptRecord]] = {}
    for record in timing.attempts:
        if record.element is not None:
            by_element.setdefault(record.element, []).append(record)
    rows: list[CallTiming] = []
    for index in sorted(by_element):
        records = tuple(by_element[index])
        start_s = max(0.0, min(r.ended_s - r.duration_s for r in records))
        last = records[-1]
        rows.append(
            CallTiming(
                f"{timing.call_id}[{index}]",
                timing.service,
                timing.stage,
                timing.required,
                start_s * 1000,
                (max(r.ended_s for r in records) - start_s) * 1000,
                last.outcome,
                records,
                fallback=False,
                breaker_open=any(r.kind is OutcomeKind.CIRCUIT_OPEN for r in records),
                cache=any(r.via == "cache" for r in records),
                shared=any(r.via == "shared" for r in records),
            )
        )
    return tuple(rows)


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
                ("shared", timing.shared),
            )
            if on
        )
        flags += "".join(f" {name}" for name in dict.fromkeys(name for name, _ in timing.decisions))
        count = "" if timing.elements is None else f" elements={timing.elements}"
        desc = f"{timing.service} {timing.outcome} attempts={timing.network_attempts}{count}{flags}"
        entries.append(f'{timing.call_id};dur={timing.duration_ms:.1f};desc="{desc}"')
    return ", ".join(entries)
