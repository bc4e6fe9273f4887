"""Hedged requests (contract section 7, ``hedge.after_ms``): GET and idempotent calls only.

An attempt is sent (in the calling greenlet); when it has not answered after
``after_ms``, a second one is started beside it, and the first *decisive* answer wins: a success, or an answer the
retry policy would not retry (a 404 is an answer; a 503, a timeout or a refused
connection is not, so the other attempt is still waited for). The loser is
cancelled: its ``AttemptCancel`` shuts its socket (a thread blocked in ``recv``
wakes up at once) and, for the hedge, the spawner kills its greenlet, so its connection is closed,
never put back in the pool, its bulkhead slot is freed and its breaker permit is
released without counting as a failure (``DownstreamClient.attempt``).

The hedge is one more try at the service, so it spends the retry budget like a
retry (``grant``); over budget, it is not sent. Each attempt goes through the
breaker and the bulkhead on its own. Decisions (``hedge_fired``, ``hedge_won``,
``hedge_over_budget``) go to ``on_decision`` (metrics, explain).

Who notices the ``after_ms``: a transport that reads the answer off a socket (``arms_on_read``:
``downstream.transport``) waits for its first bytes only until ``hedge_at`` and then calls
``hedge_due`` and goes on reading, so a call answered in time arms nothing at all (issue 14: the
features under 5 % CPU when not triggered). Waits that are not for the answer (connecting, a
bulkhead slot) call ``waiting`` first, which arms a timer for ``hedge_at``; so does every
attempt of a transport that does not arm on read (``MockTransport``): the timer is then armed
before the attempt is sent.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

from orchestration.native_lock import allocate_lock
from orchestration.outcome import Outcome, OutcomeKind
from orchestration.resilience.retry import DecisionListener, RetryGrant
from orchestration.spawn import Running, Spawner

HEDGE_CANCELLED = "cancelled: the other attempt of the hedge answered first"
_OK = OutcomeKind.OK
_WAIT_MARGIN_S = 1.0  # attempts end by their own timeout; this only guards against a stuck spawner


class AttemptCancel:
    """Cancels one attempt from another thread or greenlet: the transport ``bind``s the
    attempt's socket, ``cancel`` shuts it down (or refuses the bind if it comes later).
    Its lock is the OS's (``native_lock``): nothing waits while holding it.

    ``hedge_at`` (a hedged first attempt's token, ``_Race``): when, on ``time.monotonic``, the
    transport calls ``hedge_due`` if no answer has come; None: nothing to arm."""

    __slots__ = ("_lock", "_sock", "cancelled")

    hedge_at: float | None = None

    def __init__(self, lock: Any = None) -> None:
        self.cancelled = False
        self._sock: Any = None
        self._lock = lock if lock is not None else allocate_lock()

    def bind(self, sock: Any) -> bool:
        """False when already cancelled: the caller must not send.

        No lock (it runs on every hedged call): ``bind`` stores the socket, then reads
        ``cancelled``; ``cancel`` stores ``cancelled``, then reads the socket. Whatever
        the order, one sees the other's store: the socket is shut, or not sent on, or both."""
        self._sock = sock
        return not self.cancelled

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to stop
                sock.shutdown(socket.SHUT_RDWR)

    def hedge_due(self) -> None:
        """No answer by ``hedge_at``: start the hedge (the caller goes on waiting for its own)."""

    def waiting(self) -> None:
        """The attempt is about to wait for something other than the answer (a connection, a
        bulkhead slot): whatever must happen at ``hedge_at`` can no longer wait for the read."""


# request, timeout_s, cancel token (None: nothing will cancel it) -> outcome
CancellableAttempt = Callable[[Any, float, AttemptCancel | None], Outcome]


# One OS lock for every race (``native_lock``): its sections only set flags, never wait and
# never take it twice, so sharing it costs nothing, where a lock per race was one more
# object per hedged call.
_RACE_LOCK = allocate_lock()


class _Race(AttemptCancel):
    """One hedged try: who answered decisively first, between the caller's attempt (0) and
    the hedge (1). It is also the first attempt's cancel token (an ``AttemptCancel`` on the
    shared race lock): a call not hedged makes this one object, no second token.
    ``decisive`` is pure, so nothing waits under the (shared) lock. The hedge is this
    object called, not a closure."""

    __slots__ = (
        "first_done",
        "hedge_at",
        "hedge_started",
        "hedging",
        "request",
        "running",
        "second",
        "timeout_s",
        "winner",
    )

    def __init__(self, hedging: Hedged, request: Any, timeout_s: float) -> None:
        # ``AttemptCancel.__init__`` inlined, and the state of an armed race set by ``_arm``:
        # a call answered in time (nearly all) sets only these (issue 14: under 5 % CPU).
        self.cancelled = False
        self._sock = None
        self._lock = _RACE_LOCK
        self.hedging = hedging
        self.request = request
        self.timeout_s = timeout_s
        self.hedge_at: float | None = time.monotonic() + hedging.after_s  # None once armed
        self.running: Running[Outcome | None] | None = None  # the armed timer (then the hedge's task)

    def _arm(self, delay_s: float) -> None:
        self.hedge_at = None
        self.first_done = False  # set once the caller's attempt returned: a late timer sends nothing
        self.hedge_started = False
        self.winner: int | None = None
        self.second: AttemptCancel | None = None  # the hedge's token, made when it fires
        self.running = self.hedging.spawner.later(delay_s, self)

    def hedge_due(self) -> None:
        """Called by the first attempt's transport (its greenlet) at ``hedge_at``: the hedge
        starts at the loop's next turn, in its own task, while the first goes on reading."""
        if self.hedge_at is not None:
            self._arm(0.0)

    def waiting(self) -> None:
        """Arms a timer for ``hedge_at`` (the transport's read will not be what notices it)."""
        hedge_at = self.hedge_at
        if hedge_at is not None:
            self._arm(max(0.0, hedge_at - time.monotonic()))

    def stop(self) -> None:
        """The first attempt is over: disarm the timer, or cancel and kill a started hedge."""
        running = self.running
        if running is not None:  # armed (not armed: nothing was started, nothing can start)
            self.cancel_hedge()
            running.cancel()

    def first_answered(self, first: Outcome) -> tuple[bool, bool]:
        """The caller's attempt returned: (it won the race, the hedge had started)."""
        with self._lock:
            self.first_done = True  # a timer firing from now on sends nothing
            if self.winner is None and (first.kind is _OK or self.hedging.decisive(first)):
                self.winner = 0
            return self.winner == 0, self.hedge_started

    def cancel_hedge(self) -> None:
        with self._lock:
            self.first_done = True  # a timer firing from now on sends nothing
            token = self.second
        if token is not None:
            token.cancel()

    def __call__(self) -> Outcome | None:
        """The timer fired (the race is the timer's task: no bound method made per call):
        runs in its own task."""
        hedging = self.hedging
        with self._lock:
            if self.first_done:
                return None  # answered just as the timer fired: no hedge
            self.hedge_started = True
            token = self.second = AttemptCancel()
        after_ms = f"{hedging.after_s * 1000:.0f} ms"
        if hedging.grant is not None and not hedging.grant():
            hedging.on_decision("hedge_over_budget", f"no hedge after {after_ms}: the retry budget is spent")
            return None
        hedging.on_decision("hedge_fired", f"no answer after {after_ms}: a second attempt was sent")
        outcome = hedging.attempt(self.request, self.timeout_s - hedging.after_s, token)
        with self._lock:
            if self.winner is None and hedging.decisive(outcome):
                self.winner = 1
            won = self.winner == 1
        if won:
            self.cancel()  # the caller's attempt: its socket is shut, its recv returns at once
        return outcome


class Hedged:
    """``attempt`` as one hedged try, built once per (endpoint, call): ``run_with_retry``
    calls ``partial(hedged, request)`` per attempt.

    ``decisive`` says which answers win; a success always does.

    The first attempt runs in the calling greenlet with a ``_Race`` as its cancel token. With
    ``arms_on_read`` its transport calls the race's ``hedge_due`` (or ``waiting``) itself, so a
    hedge not needed (the common case) costs one ``_Race`` and nothing else; without, a timer
    (``spawner.later``) is armed before the attempt and closed when it answers."""

    __slots__ = ("after_s", "arms_on_read", "attempt", "decisive", "grant", "on_decision", "spawner")

    def __init__(
        self,
        attempt: CancellableAttempt,
        *,
        after_s: float,
        spawner: Spawner,
        decisive: Callable[[Outcome], bool],
        grant: RetryGrant | None,
        on_decision: DecisionListener,
        arms_on_read: bool = False,
    ) -> None:
        self.attempt = attempt
        self.arms_on_read = arms_on_read
        self.after_s = after_s
        self.spawner = spawner
        self.decisive = decisive
        self.grant = grant
        self.on_decision = on_decision

    def __call__(self, request: Any, timeout_s: float) -> Outcome:
        after_s = self.after_s
        if timeout_s <= after_s:
            return self.attempt(request, timeout_s, None)  # the hedge would never go out in time: nothing to cancel
        race = _Race(self, request, timeout_s)
        if not self.arms_on_read:
            race.waiting()  # nothing will notice ``after_ms`` but a timer
        try:
            first = self.attempt(request, timeout_s, race)
        except BaseException:  # the caller was cancelled (its stage failed): so is the hedge
            race.stop()
            raise
        timer = race.running
        if timer is None:
            return first  # answered before ``after_ms``: nothing was armed, nothing to cancel
        won, started = race.first_answered(first)
        if won or not started:  # not fired (or fired too late: it sends nothing, ``first_done``)
            race.stop()
            return first
        done = timer.next_done(max(0.0, timeout_s - after_s) + _WAIT_MARGIN_S)
        if done is None:
            race.stop()
            return first
        second = done[1]
        if isinstance(second, Exception):
            raise second
        if race.winner == 1 and second is not None:
            self.on_decision("hedge_won", "the hedge answered first; the first attempt was cancelled")
            return second
        outcomes = [outcome for outcome in (first, second) if outcome is not None]
        touched = [outcome for outcome in outcomes if outcome.touched_network]
        return (touched or outcomes)[0]  # neither decisive: the first attempt's failure, unless it never went out
