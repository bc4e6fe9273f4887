"""The admission gate: how many aggregate requests of this worker run at once.

Why: a gevent worker accepts every connection, so under overload hundreds of
requests shared one CPU and each waited so long for its turn that its downstream
calls timed out although the answers had arrived; the breakers then opened on
healthy services (bench/README.md). Waiting *before* the run starts keeps the
endpoint deadline and every attempt timeout measuring the downstream, not the
queue.

The limit is adaptive (``orchestration.edge.admission_limit``): a lag monitor
measures how late a short sleep wakes up in this process's event loop; the limit
shrinks when that lag is high and grows while it is low and the limit is being
reached. A fixed limit is wrong for an I/O-bound worker: it caps throughput at
``limit ÷ critical path`` however idle the CPU is.

Requests over the limit wait, first come first served, up to ``wait_s``, then
get 503 ``OVERLOADED``. Under gevent the ``threading`` primitives are patched
into greenlet-aware ones.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Callable

from orchestration.edge.admission_limit import AdaptiveLimit, LimitPolicy

logger = logging.getLogger("gateway.admission")

LAG_SAMPLE_INTERVAL_S = 0.020
_SUMMARY_EVERY_S = 10.0


class LagMonitor:
    """Sleeps ``interval_s`` again and again and reports each overshoot (the
    event-loop lag) to ``on_lag``. A greenlet when gevent has patched this
    process, a daemon thread otherwise. ``start`` is idempotent per process, so a
    forked child (a gunicorn worker) starts its own: never start it before the fork."""

    def __init__(self, on_lag: Callable[[float], None], interval_s: float = LAG_SAMPLE_INTERVAL_S) -> None:
        self._on_lag = on_lag
        self._interval_s = interval_s
        self._pid: int | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._pid == os.getpid()

    def start(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            if _gevent_patched():
                import gevent

                gevent.spawn(self._run, _gevent_sleep)
            else:
                threading.Thread(target=self._run, args=(time.sleep,), name="admission-lag", daemon=True).start()

    def _run(self, sleep: Callable[[float], None]) -> None:
        interval = self._interval_s
        while True:
            started = time.monotonic()
            sleep(interval)
            lag_s = time.monotonic() - started - interval
            try:
                self._on_lag(max(0.0, lag_s))
            except Exception:
                logger.exception("admission lag sample failed")


def _gevent_patched() -> bool:
    try:
        from gevent import monkey
    except ImportError:
        return False
    return bool(monkey.is_module_patched("threading"))


def _gevent_sleep(seconds: float) -> None:
    import gevent

    # libev caches "now" at the start of a loop iteration; refresh it, or a timer set
    # late in a busy iteration is due early and the overshoot under-reads the lag.
    gevent.get_hub().loop.update_now()
    gevent.sleep(seconds)


class AdmissionGate:
    """``limit`` None turns the gate off (``GATEWAY_MAX_IN_FLIGHT=0``)."""

    def __init__(
        self,
        limit: AdaptiveLimit | None,
        wait_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        start_monitor: bool = True,
    ) -> None:
        self._limit = limit
        self._wait_s = wait_s
        self._clock = clock
        self._in_flight = 0
        self._waiters: collections.deque[threading.Event] = collections.deque()
        self._lock = threading.Lock()
        self._monitor = LagMonitor(self.observe_lag) if limit is not None and start_monitor else None
        self._summary_at = clock()
        self._range: tuple[int, int] | None = None
        self._worst_lag_s = 0.0

    @classmethod
    def from_settings(
        cls, max_in_flight: int, *, ceiling: int, lag_ms: float, wait_ms: float, start_monitor: bool = True
    ) -> AdmissionGate:
        """``max_in_flight`` is the starting limit (0: no gate; 1 is raised to the
        minimum, 2); the limit then moves between 2 and ``ceiling``."""
        if max_in_flight <= 0:
            return cls(None, wait_ms / 1000, start_monitor=False)
        policy = LimitPolicy(initial=max_in_flight, ceiling=ceiling, lag_threshold_s=lag_ms / 1000)
        return cls(AdaptiveLimit(policy, time.monotonic), wait_ms / 1000, start_monitor=start_monitor)

    @property
    def limit(self) -> int | None:
        return None if self._limit is None else self._limit.limit

    def snapshot(self) -> dict[str, int | None]:
        with self._lock:
            return {"limit": self.limit, "in_flight": self._in_flight, "waiting": len(self._waiters)}

    def start(self) -> None:
        """Start this process's lag monitor (idempotent; ``wiring.warm_up`` and the first
        request call it, both after gunicorn's fork)."""
        if self._monitor is not None:
            self._monitor.start()

    def enter(self) -> bool:
        """First come, first served: a freed slot goes to the longest waiter, never
        to a request that just arrived (barging made a few wait the whole wait_s)."""
        limit = self._limit
        if limit is None:
            return True
        if self._monitor is not None and not self._monitor.running:
            self._monitor.start()
        with self._lock:
            if self._in_flight < limit.limit and not self._waiters:
                self._in_flight += 1
                if self._in_flight >= limit.limit:
                    limit.note_saturated()
                return True
            limit.note_saturated()
            ticket = threading.Event()
            self._waiters.append(ticket)
        if ticket.wait(self._wait_s):
            return True
        with self._lock:
            if ticket.is_set():  # handed a slot just as the wait ended
                return True
            self._waiters.remove(ticket)
        return False

    def leave(self) -> None:
        if self._limit is None:
            return
        with self._lock:
            self._in_flight -= 1
            self._hand_over(self._limit.limit)

    def observe_lag(self, lag_s: float) -> None:
        """One lag sample (from the monitor, or a test): may end a period and move the limit."""
        limit = self._limit
        if limit is None:
            return
        with self._lock:
            limit.observe_lag(lag_s)
            adjustment = limit.adjust()
            if adjustment is not None and adjustment.limit > adjustment.previous:
                self._hand_over(adjustment.limit)
        self._note(limit.limit, lag_s)

    def _hand_over(self, limit: int) -> None:
        """With the lock held: admit the longest waiters while there is room."""
        while self._waiters and self._in_flight < limit:
            self._in_flight += 1
            self._waiters.popleft().set()

    def _note(self, limit: int, lag_s: float) -> None:
        """At most one INFO line per 10 s, and only when the limit moved."""
        low, high = self._range or (limit, limit)
        self._range = (min(low, limit), max(high, limit))
        self._worst_lag_s = max(self._worst_lag_s, lag_s)
        now = self._clock()
        if now - self._summary_at < _SUMMARY_EVERY_S:
            return
        low, high = self._range
        if low != high:
            logger.info(
                "admission limit %d (%d-%d over the last %.0f s, worst event-loop lag %.0f ms)",
                limit,
                low,
                high,
                now - self._summary_at,
                self._worst_lag_s * 1000,
            )
        self._summary_at, self._range, self._worst_lag_s = now, None, 0.0
