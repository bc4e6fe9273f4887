"""Hedged requests (contract section 7, ``hedge.after_ms``): GET and idempotent calls only.

An attempt is sent (in the calling greenlet); when it has not answered after
``after_ms``, a timer starts a second one beside it, and the first *decisive* answer wins: a success, or an answer the
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
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

from orchestration.outcome import Outcome
from orchestration.resilience.retry import DecisionListener, RetryGrant
from orchestration.spawn import Spawner

HEDGE_CANCELLED = "cancelled: the other attempt of the hedge answered first"
_WAIT_MARGIN_S = 1.0  # attempts end by their own timeout; this only guards against a stuck spawner


class AttemptCancel:
    """Cancels one attempt from another thread or greenlet: the transport ``bind``s the
    attempt's socket, ``cancel`` shuts it down (or refuses the bind if it comes later)."""

    __slots__ = ("_lock", "_sock", "cancelled")

    def __init__(self) -> None:
        self.cancelled = False
        self._sock: Any = None
        self._lock = threading.Lock()

    def bind(self, sock: Any) -> bool:
        """False when already cancelled: the caller must not send."""
        with self._lock:
            if self.cancelled:
                return False
            self._sock = sock
            return True

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to stop
                sock.shutdown(socket.SHUT_RDWR)


CancellableAttempt = Callable[[float, AttemptCancel], Outcome]  # timeout_s, cancel token -> outcome


class _Race:
    """Who answered decisively first, between the caller's attempt (0) and the hedge (1)."""

    __slots__ = ("first_done", "hedge_started", "lock", "tokens", "winner")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first_done = False  # set once the caller's attempt returned: a late timer sends nothing
        self.hedge_started = False
        self.winner: int | None = None
        self.tokens: list[AttemptCancel | None] = [AttemptCancel(), None]  # the hedge's made when it fires

    def claim(self, index: int, outcome: Outcome, decisive: Callable[[Outcome], bool]) -> bool:
        with self.lock:
            if index == 0:
                self.first_done = True
            if self.winner is None and decisive(outcome):
                self.winner = index
            return self.winner == index

    def cancel(self, index: int) -> None:
        token = self.tokens[index]
        if token is not None:
            token.cancel()


def hedged(
    attempt: CancellableAttempt,
    *,
    after_s: float,
    spawner: Spawner,
    decisive: Callable[[Outcome], bool],
    grant: RetryGrant | None,
    on_decision: DecisionListener,
) -> Callable[[float], Outcome]:
    """``attempt`` as one hedged try: the function ``run_with_retry`` calls per attempt.

    The first attempt runs in the calling greenlet; ``spawner.later`` arms a timer that
    starts the hedge only if it fires. A hedge not needed (the common case) thus costs a
    timer, not a greenlet: issue 14 wants the features under 5 % CPU when not triggered."""

    def run(timeout_s: float) -> Outcome:
        if timeout_s <= after_s:
            return attempt(timeout_s, AttemptCancel())  # the hedge would never go out in time
        race = _Race()

        def hedge() -> Outcome | None:  # the timer fired: runs in its own task
            with race.lock:
                if race.first_done:
                    return None  # answered just as the timer fired: no hedge
                race.hedge_started = True
                token = race.tokens[1] = AttemptCancel()
            if grant is not None and not grant():
                on_decision("hedge_over_budget", f"no hedge after {after_s * 1000:.0f} ms: the retry budget is spent")
                return None
            on_decision("hedge_fired", f"no answer after {after_s * 1000:.0f} ms: a second attempt was sent")
            outcome = attempt(timeout_s - after_s, token)
            if race.claim(1, outcome, decisive):
                race.cancel(0)  # the caller's attempt: its socket is shut, its recv returns at once
            return outcome

        timer = spawner.later(after_s, hedge)
        try:
            first = attempt(timeout_s, race.tokens[0])  # type: ignore[arg-type]
        except BaseException:  # the caller was cancelled (its stage failed): so is the hedge
            with race.lock:
                race.first_done = True
            race.cancel(1)
            timer.cancel()
            raise
        if race.claim(0, first, decisive):
            race.cancel(1)
            timer.cancel()
            return first
        if not race.hedge_started:
            timer.cancel()  # not fired (or fired too late: it sends nothing, ``first_done``)
            return first
        done = timer.next_done(max(0.0, timeout_s - after_s) + _WAIT_MARGIN_S)
        if done is None:
            race.cancel(1)
            timer.cancel()
            return first
        second = done[1]
        if isinstance(second, Exception):
            raise second
        if race.winner == 1 and second is not None:
            on_decision("hedge_won", "the hedge answered first; the first attempt was cancelled")
            return second
        outcomes = [outcome for outcome in (first, second) if outcome is not None]
        touched = [outcome for outcome in outcomes if outcome.touched_network]
        return (touched or outcomes)[0]  # neither decisive: the first attempt's failure, unless it never went out

    return run
