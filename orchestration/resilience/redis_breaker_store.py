"""Breaker state shared by every gateway process through Redis.

Each change is one atomic Lua script (``breaker_lua``) that replies with the
new state, so an attempt costs at most one round trip, usually none: while a
process's last reply (its local snapshot) is younger than ``snapshot_ttl_s``
and says closed, or open with ``open_s`` not yet over, ``acquire`` answers
locally, and a success in the closed state changes nothing, so it is not sent.
Failures, probes and admin actions always go to Redis. A breaker opened by one
process is therefore seen by the others within ``max_age_s`` (0.5 s, the contract's bound).

A snapshot older than ``snapshot_ttl_s`` (0.25 s) but younger than ``max_age_s`` still
answers, and the renewal is started beside the call (``spawner``), not inside it: under
load the renewal's round trip waits for the loop like any other, and every attempt that
waited for it had that time taken from its own timeout (at 200 clients 2.4 % of attempts
waited 20 to 150 ms on it, bench/README.md round 9). Only a snapshot older than ``max_age_s``
is renewed inside the call, as before.

When a snapshot has expired, the snapshots of every service this process called
in the last ``_ACTIVE_S`` seconds and whose snapshot has expired too are renewed
together: one ``PEEK`` script per service in one pipeline, i.e. one round trip
per ``snapshot_ttl_s`` for all of a plan's services instead of one per service
(issue 17: 5 per 0.25 s on the checkout). Transitions a peek finds (the rate
rule, on the successes it sends) are reported with that service's next call.
Every script goes through ``orchestration.redis_lane`` (the hot path's own lane to
Redis), the batch as ``HotScript.many``.

Redis down: the store falls back to per-process state (an
``InProcessBreakerStore``) for ``retry_after_s`` before trying Redis again; it
logs, tells the observer (``on_store_error``) and never raises to the caller.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from orchestration import redis_lane
from orchestration.observer import NullObserver, Observer
from orchestration.plan import BreakerPolicy
from orchestration.resilience import breaker_lua
from orchestration.resilience.breaker import AdminAction, BreakerSnapshot, BreakerState, Change, Permit
from orchestration.resilience.breaker_store import InProcessBreakerStore
from orchestration.spawn import Spawner, default_spawner

logger = logging.getLogger(__name__)

# A service not called for this long is left out of the batched snapshot renewal.
_ACTIVE_S = 10.0


@dataclass(frozen=True, slots=True)
class _Local:
    state: BreakerState
    epoch: int
    opened_at: float
    forced: bool
    fetched_at: float


@dataclass(frozen=True, slots=True)
class _Reply:
    permit: Permit
    local: _Local
    changes: list[Change]


class RedisBreakerStore:
    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "gateway:",
        snapshot_ttl_s: float = 0.25,
        max_age_s: float = 0.5,
        retry_after_s: float = 1.0,
        observer: Observer | None = None,
        spawner: Spawner | None = None,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._snapshot_ttl_s = snapshot_ttl_s
        self._max_age_s = max(max_age_s, snapshot_ttl_s)
        self._spawner = spawner or default_spawner()
        self._renewal_started = False  # a renewal beside the calls is under way
        self._retry_after_s = retry_after_s
        self._observer: Observer = observer or NullObserver()
        self._scripts = {
            name: redis_lane.register(client, getattr(breaker_lua, name))
            for name in ("ACQUIRE", "RECORD", "RELEASE", "ADMINISTER", "READ", "PEEK")
        }
        self._called: dict[str, tuple[BreakerPolicy, float]] = {}  # service: its policy, when last acquired
        self._found: dict[str, list[Change]] = {}  # transitions a peek found, reported with the next call
        # One renewal at a time: greenlets (gevent patches the lock) that find the same
        # snapshots expired wait for it instead of each sending their own.
        self._renewing = threading.Lock()
        self._local: dict[str, _Local] = {}
        self._successes: dict[str, dict[int, int]] = {}  # rate rule: closed-state successes not yet sent
        self._fallback = InProcessBreakerStore()
        self._down_until: float | None = None
        self.fallback_count = 0

    def acquire(self, service: str, policy: BreakerPolicy, now: float) -> tuple[Permit, list[Change]]:
        self._called[service] = (policy, now)
        local = self._local.get(service)
        if local is None or now - local.fetched_at >= self._max_age_s:
            with self._renewing:
                local = self._local.get(service)
                if local is None or now - local.fetched_at >= self._max_age_s:
                    self._peek_stale(now)
                    local = self._local.get(service)
        elif now - local.fetched_at >= self._snapshot_ttl_s and not self._renewal_started:
            self._renewal_started = True
            self._spawner.start([lambda: self._renew_beside(now)])  # nothing waits for it
        found = self._found.pop(service, []) if self._found else []
        if local is not None and now - local.fetched_at < self._max_age_s:
            if local.state is BreakerState.CLOSED:
                return Permit(True, epoch=local.epoch), found
            if local.state is BreakerState.OPEN and (local.forced or now < local.opened_at + policy.open_s):
                return Permit(False, epoch=local.epoch), found
        reply = self._run("ACQUIRE", service, policy, now, [])
        if reply is None:
            permit, changes = self._fallback.acquire(service, policy, now)
            return dataclasses.replace(permit, fallback=True), found + changes
        return reply.permit, found + reply.changes

    def _renew_beside(self, now: float) -> None:
        try:
            with self._renewing:
                self._peek_stale(now)
        finally:
            self._renewal_started = False

    def _peek_stale(self, now: float) -> None:
        """Renew every recently called service's expired snapshot in one round trip."""
        if self._down_until is not None and now < self._down_until:
            return
        stale = [
            (service, policy)
            for service, (policy, called_at) in list(self._called.items())
            if now - called_at < _ACTIVE_S
            and (service not in self._local or now - self._local[service].fetched_at >= self._snapshot_ttl_s)
        ]
        if not stale:
            return
        script = self._scripts["PEEK"]
        calls = [(self._keys(service), self._args(service, policy, now)) for service, policy in stale]
        try:
            raws = script.many(calls)  # one round trip; a NOSCRIPT reply loads the script and resends
        except RedisError as error:
            self._went_down(error, now)
            return
        self._down_until = None
        for (service, _), raw in zip(stale, raws, strict=True):
            if isinstance(raw, Exception):
                continue  # that service's next acquire runs ACQUIRE (and reports) as before
            reply = _parse(raw, now)
            self._local[service] = reply.local
            if reply.changes:
                self._found.setdefault(service, []).extend(reply.changes)

    def record(self, service: str, policy: BreakerPolicy, permit: Permit, failed: bool, now: float) -> list[Change]:
        if permit.fallback:
            return self._fallback.record(service, policy, permit, failed, now)
        if not failed and not permit.probe:
            if policy.rate_based:  # counted locally, sent with this process's next script
                pending = self._successes.get(service)
                if pending is None:  # not ``setdefault``: that builds a dict on every call
                    pending = self._successes[service] = {}
                second = int(now)
                pending[second] = pending.get(second, 0) + 1
            return []
        args = [permit.epoch, int(permit.probe), int(failed)]
        reply = self._run("RECORD", service, policy, now, args)
        return [] if reply is None else reply.changes

    def release(self, service: str, policy: BreakerPolicy, permit: Permit) -> None:
        if permit.fallback:
            self._fallback.release(service, policy, permit)
        else:
            self._run("RELEASE", service, policy, self._last_seen(service), [permit.epoch])

    def administer(self, service: str, action: AdminAction, now: float) -> list[Change]:
        reply = self._run("ADMINISTER", service, BreakerPolicy(), now, [action], force=True)
        return self._fallback.administer(service, action, now) if reply is None else reply.changes

    def snapshot(self, service: str, policy: BreakerPolicy, now: float) -> BreakerSnapshot:
        keys = self._keys(service)
        try:
            raw = self._scripts["READ"](keys=keys, args=[repr(now - policy.window_s)])
        except RedisError as error:
            self._went_down(error, now)
            return self._fallback.snapshot(service, policy, now)
        return _snapshot(service, policy, now, [_text(item) for item in raw])

    def _run(
        self, name: str, service: str, policy: BreakerPolicy, now: float, extra: list[Any], *, force: bool = False
    ) -> _Reply | None:
        if not force and self._down_until is not None and now < self._down_until:
            return None
        args = [*self._args(service, policy, now), *extra]
        try:
            raw = self._scripts[name](keys=self._keys(service), args=args)
        except RedisError as error:
            self._went_down(error, now)
            return None
        self._down_until = None
        reply = _parse(raw, now)
        self._local[service] = reply.local
        return reply

    def _args(self, service: str, policy: BreakerPolicy, now: float) -> list[Any]:
        """The ARGV every script starts with (``breaker_lua``); takes the pending successes."""
        return [
            repr(now),
            policy.failure_threshold,
            repr(float(policy.window_s)),
            repr(float(policy.open_s)),
            policy.half_open_probes,
            f"{policy.window_s:g}s",
            f"{policy.open_s:g}s",
            policy.min_calls if policy.rate_based else 0,
            repr(float(policy.failure_rate or 0)),
            self._pending_successes(service) if policy.rate_based else "",
        ]

    def _pending_successes(self, service: str) -> str:
        pending = self._successes.pop(service, None)
        return ",".join(f"{second}:{count}" for second, count in pending.items()) if pending else ""

    def _went_down(self, error: RedisError, now: float) -> None:
        if self._down_until is None:
            # the error's type only: a Redis error message can echo a URL with a password
            logger.warning("breaker store: Redis unreachable (%s), using per-process state", type(error).__name__)
        self._down_until = now + self._retry_after_s
        self.fallback_count += 1
        self._observer.on_store_error("breaker", error)

    def _last_seen(self, service: str) -> float:
        local = self._local.get(service)
        return 0.0 if local is None else local.fetched_at

    def _keys(self, service: str) -> list[str]:
        base = f"{self._prefix}breaker:{{{service}}}"
        return [base, f"{base}:failures", f"{base}:rate"]


def _text(item: Any) -> str:
    return item.decode() if isinstance(item, bytes) else str(item)


def _parse(raw: list[Any], now: float) -> _Reply:
    allowed, probe, epoch, state, opened_at, forced, *flat = (_text(item) for item in raw)
    local = _Local(BreakerState(state), int(epoch), float(opened_at), forced == "1", now)
    permit = Permit(allowed == "1", probe=probe == "1", epoch=int(epoch))
    changes = [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]
    return _Reply(permit, local, changes)


def _snapshot(service: str, policy: BreakerPolicy, now: float, raw: list[str]) -> BreakerSnapshot:
    state_text, opened_text, _epoch, issued, ok, forced_text, count = raw
    state, opened_at, forced = BreakerState(state_text), float(opened_text), forced_text == "1"
    until: float | None = None
    if state is BreakerState.OPEN:
        until = None if forced else max(0.0, opened_at + policy.open_s - now)
        if until == 0.0:
            state = BreakerState.HALF_OPEN
    return BreakerSnapshot(
        service=service,
        state=state,
        failures_in_window=int(count),
        opened_at=opened_at if state_text != "closed" else None,
        seconds_until_half_open=until,
        probes_issued=int(issued),
        probes_succeeded=int(ok),
        forced=forced,
    )
