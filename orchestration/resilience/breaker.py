"""The circuit breaker: a pure state machine per downstream service.

::

    closed ──(failure_threshold failures within window_s)──▶ open
    closed ──(rate rule: ≥ min_calls calls and ≥ failure_rate % failed within window_s)──▶ open
    open ──(open_s elapsed; checked on the next call)──▶ half_open
    half_open ──(all half_open_probes calls succeed)──▶ closed
    half_open ──(any probe fails)──▶ open

Closed lets every call through and keeps a sliding window of failure times.
Open refuses at once, without touching the network. Half-open hands out exactly
``half_open_probes`` permits; callers beyond them are refused as if open.
Failures are 5xx, timeouts, connection errors and unparseable bodies; 4xx mean
the service is up. Every attempt (retries included) counts.

The functions here mutate a ``BreakerRecord`` and return the transitions they
made; they never read a clock or touch storage. Stores
(``breaker_store.InProcessBreakerStore``, ``redis_breaker_store.RedisBreakerStore``)
hold records and apply these rules; the Redis store repeats them in Lua, and
one behaviour suite runs against both. ``epoch`` grows on every transition so
an outcome reported for a permit of an earlier state is ignored (a slow call
started while closed cannot close a breaker that reopened meanwhile).

The rate rule (``min_calls`` and ``failure_rate``, resilience4j's) counts calls and
failures in one-second buckets over ``window_s``, so a busy service is judged by its
share of failures, not by a handful of them.

Ops can also ``force_open`` (held open until reset), ``force_closed`` (held
closed, failures not counted, until reset) and ``reset`` (closed, window empty).
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from orchestration.clock import Clock, SystemClock
from orchestration.observer import BreakerTransition, NullObserver, Observer
from orchestration.plan import BreakerPolicy

if TYPE_CHECKING:
    from orchestration.resilience.breaker_store import BreakerStore

logger = logging.getLogger(__name__)

Change = tuple[str, str, str]  # (from_state, to_state, reason)
AdminAction = Literal["reset", "force_open", "force_closed"]


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Permit:
    """The answer to "may I call?"; hand it back with the call's result."""

    allowed: bool
    probe: bool = False
    epoch: int = 0
    fallback: bool = False  # issued by a Redis store's per-process fallback


@dataclass(slots=True)
class BreakerRecord:
    state: BreakerState = BreakerState.CLOSED
    failures: list[float] = field(default_factory=list)
    opened_at: float = 0.0
    epoch: int = 0
    probes_issued: int = 0
    probes_ok: int = 0
    forced: bool = False
    # rate rule: calls and failures per whole second, within window_s (closed state only),
    # with their sums kept beside them: a call adds to a bucket and a sum, and buckets are
    # dropped only when the horizon moves (a scan and two sums of up to window_s buckets on
    # every call cost ~13 µs: bench/ab/resilience_features.py)
    calls: dict[int, int] = field(default_factory=dict)
    failed_calls: dict[int, int] = field(default_factory=dict)
    calls_total: int = 0
    failed_total: int = 0
    rate_horizon: float | None = None  # the horizon buckets were last dropped at


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What ops see: the effective state (an open breaker past ``open_s`` reads
    half_open, since the next call will probe) and why."""

    service: str
    state: BreakerState
    failures_in_window: int
    opened_at: float | None
    seconds_until_half_open: float | None
    probes_issued: int
    probes_succeeded: int
    forced: bool


def _move(record: BreakerRecord, to: BreakerState, reason: str, changes: list[Change]) -> None:
    changes.append((str(record.state), str(to), reason))
    record.state = to
    record.epoch += 1
    record.probes_issued = 0
    record.probes_ok = 0


def _open(record: BreakerRecord, reason: str, now: float, changes: list[Change]) -> None:
    _move(record, BreakerState.OPEN, reason, changes)
    record.opened_at = now
    record.failures.clear()
    _clear_rate(record)


def _clear_rate(record: BreakerRecord) -> None:
    record.calls.clear()
    record.failed_calls.clear()
    record.calls_total = record.failed_total = 0
    record.rate_horizon = None


def rate_reason(policy: BreakerPolicy, calls: int, failed: int) -> str | None:
    """Why the rate rule opens the breaker now, or None (the Lua store says the same)."""
    if policy.min_calls is None or policy.failure_rate is None or calls < policy.min_calls:
        return None
    if failed * 100 < policy.failure_rate * calls:
        return None
    return f"{failed * 100 // calls}% of {calls} calls failed within {policy.window_s:g}s"


def _count_call(record: BreakerRecord, policy: BreakerPolicy, failed: bool, now: float, changes: list[Change]) -> None:
    second = int(now)
    horizon = second - policy.window_s
    if horizon != record.rate_horizon:  # a new second (or a new window_s): drop what left the window
        record.rate_horizon = horizon
        for old in [s for s in record.calls if s <= horizon]:
            record.calls_total -= record.calls.pop(old)
        for old in [s for s in record.failed_calls if s <= horizon]:
            record.failed_total -= record.failed_calls.pop(old)
    record.calls[second] = record.calls.get(second, 0) + 1
    record.calls_total += 1
    if failed:
        record.failed_calls[second] = record.failed_calls.get(second, 0) + 1
        record.failed_total += 1
    elif not record.failed_total:
        return  # no failure in the window: the rule cannot open (the common case, no call made)
    reason = rate_reason(policy, record.calls_total, record.failed_total)
    if reason is not None:
        _open(record, reason, now, changes)


def acquire(record: BreakerRecord, policy: BreakerPolicy, now: float) -> tuple[Permit, list[Change]]:
    changes: list[Change] = []
    if record.state is BreakerState.OPEN and not record.forced and now >= record.opened_at + policy.open_s:
        _move(record, BreakerState.HALF_OPEN, f"open for {policy.open_s:g}s", changes)
    if record.state is BreakerState.CLOSED:
        return Permit(True, epoch=record.epoch), changes
    if record.state is BreakerState.HALF_OPEN and record.probes_issued < policy.half_open_probes:
        record.probes_issued += 1
        return Permit(True, probe=True, epoch=record.epoch), changes
    return Permit(False, epoch=record.epoch), changes


def record_outcome(
    record: BreakerRecord, policy: BreakerPolicy, permit: Permit, failed: bool, now: float
) -> list[Change]:
    changes: list[Change] = []
    if permit.epoch != record.epoch or record.forced:
        return changes
    if record.state is BreakerState.CLOSED and policy.rate_based:
        second = int(now)
        if failed or record.failed_total or second - policy.window_s != record.rate_horizon:
            _count_call(record, policy, failed, now, changes)
        else:  # a success, no failure in the window, the same second: ``_count_call``'s count alone
            record.calls[second] = record.calls.get(second, 0) + 1
            record.calls_total += 1
    if record.state is BreakerState.CLOSED and failed:
        horizon = now - policy.window_s
        record.failures = [at for at in record.failures if at > horizon]
        record.failures.append(now)
        if len(record.failures) >= policy.failure_threshold:
            reason = f"{len(record.failures)} failures within {policy.window_s:g}s"
            _open(record, reason, now, changes)
    elif record.state is BreakerState.HALF_OPEN and permit.probe:
        if failed:
            _open(record, "probe failed", now, changes)
        else:
            record.probes_ok += 1
            if record.probes_ok >= policy.half_open_probes:
                _move(record, BreakerState.CLOSED, f"{record.probes_ok} probes succeeded", changes)
                record.failures.clear()
                _clear_rate(record)
    return changes


def release(record: BreakerRecord, permit: Permit) -> None:
    """Give back a probe that never reached the service (cancelled, bulkhead full)."""
    if permit.probe and permit.epoch == record.epoch and record.state is BreakerState.HALF_OPEN:
        record.probes_issued = max(0, record.probes_issued - 1)


def administer(record: BreakerRecord, action: AdminAction, now: float) -> list[Change]:
    changes: list[Change] = []
    if action == "force_open":
        _open(record, "forced open", now, changes)
    else:
        reason = "forced closed" if action == "force_closed" else "reset"
        _move(record, BreakerState.CLOSED, reason, changes)
        record.failures.clear()
        _clear_rate(record)
    record.forced = action != "reset"
    return changes


def snapshot(service: str, record: BreakerRecord, policy: BreakerPolicy, now: float) -> BreakerSnapshot:
    state = record.state
    until: float | None = None
    if state is BreakerState.OPEN:
        until = None if record.forced else max(0.0, record.opened_at + policy.open_s - now)
        if until == 0.0:
            state = BreakerState.HALF_OPEN
    horizon = now - policy.window_s
    return BreakerSnapshot(
        service=service,
        state=state,
        failures_in_window=sum(1 for at in record.failures if at > horizon),
        opened_at=record.opened_at if record.state is not BreakerState.CLOSED else None,
        seconds_until_half_open=until,
        probes_issued=record.probes_issued,
        probes_succeeded=record.probes_ok,
        forced=record.forced,
    )


class CircuitBreaker:
    """One service's breaker as callers use it: the policy, a store, a clock and
    an observer that hears every transition (also used by ops pages)."""

    def __init__(
        self,
        service: str,
        policy: BreakerPolicy,
        store: BreakerStore,
        *,
        clock: Clock | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.service = service
        self.policy = policy
        self._store = store
        self._clock: Clock = clock or SystemClock()
        self._observer: Observer = observer or NullObserver()

    def acquire(self) -> Permit:
        now = self._clock.wall()
        permit, changes = self._store.acquire(self.service, self.policy, now)
        self._emit(changes, now)
        return permit

    def record(self, permit: Permit, *, failed: bool) -> None:
        now = self._clock.wall()
        self._emit(self._store.record(self.service, self.policy, permit, failed, now), now)

    def release(self, permit: Permit) -> None:
        if permit.probe:
            self._store.release(self.service, self.policy, permit)

    def snapshot(self) -> BreakerSnapshot:
        return self._store.snapshot(self.service, self.policy, self._clock.wall())

    def reset(self) -> None:
        self._administer("reset")

    def force_open(self) -> None:
        self._administer("force_open")

    def force_closed(self) -> None:
        self._administer("force_closed")

    def _administer(self, action: AdminAction) -> None:
        now = self._clock.wall()
        self._emit(self._store.administer(self.service, action, now), now)

    def _emit(self, changes: list[Change], now: float) -> None:
        for from_state, to_state, reason in changes:
            transition = BreakerTransition(self.service, from_state, to_state, reason, now)
            logger.debug("breaker %s: %s -> %s (%s)", self.service, from_state, to_state, reason)
            self._observer.on_breaker_transition(transition)
