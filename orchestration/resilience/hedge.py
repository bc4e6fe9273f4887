"""Hedged requests (contract section 7, ``hedge.after_ms``): GET and idempotent calls only.

An attempt is sent; when it has not answered after ``after_ms``, a second one is
sent beside it, and the first *decisive* answer wins: a success, or an answer the
retry policy would not retry (a 404 is an answer; a 503, a timeout or a refused
connection is not, so the other attempt is still waited for). The loser is
cancelled: its ``AttemptCancel`` shuts its socket (a thread blocked in ``recv``
wakes up at once) and the spawner kills its greenlet, so its connection is closed,
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


def hedged(
    attempt: CancellableAttempt,
    *,
    after_s: float,
    spawner: Spawner,
    decisive: Callable[[Outcome], bool],
    grant: RetryGrant | None,
    on_decision: DecisionListener,
) -> Callable[[float], Outcome]:
    """``attempt`` as one hedged try: the function ``run_with_retry`` calls per attempt."""

    def run(timeout_s: float) -> Outcome:
        tokens = (AttemptCancel(), AttemptCancel())
        answered = threading.Event()

        def first() -> Outcome:
            try:
                return attempt(timeout_s, tokens[0])
            finally:
                answered.set()

        def second() -> Outcome | None:
            if answered.wait(after_s) or timeout_s <= after_s:
                return None  # answered in time: no hedge
            if grant is not None and not grant():
                on_decision("hedge_over_budget", f"no hedge after {after_s * 1000:.0f} ms: the retry budget is spent")
                return None
            on_decision("hedge_fired", f"no answer after {after_s * 1000:.0f} ms: a second attempt was sent")
            return attempt(timeout_s - after_s, tokens[1])

        running = spawner.start([first, second])
        results: dict[int, Outcome | None] = {}
        winner: int | None = None
        try:
            while len(results) < 2:
                done = running.next_done(timeout_s + _WAIT_MARGIN_S)
                if done is None:
                    break
                index, value = done
                if isinstance(value, Exception):
                    raise value
                results[index] = value
                if value is not None and decisive(value):
                    winner = index
                    break
        finally:
            for index, token in enumerate(tokens):
                if index != winner and index not in results:
                    token.cancel()
            if len(results) < 2:
                running.cancel()
        if winner == 1:
            on_decision("hedge_won", "the hedge answered first; the first attempt was cancelled")
        if winner is not None:
            return results[winner]  # type: ignore[return-value]
        outcomes = [outcome for outcome in (results.get(0), results.get(1)) if outcome is not None]
        touched = [outcome for outcome in outcomes if outcome.touched_network]
        return (touched or outcomes)[0]  # neither decisive: the first attempt's failure, unless it never went out

    return run
