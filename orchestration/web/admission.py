"""Admission control: how many aggregate requests one worker process runs at once.

Why a gate at all: a gevent worker accepts every connection, so under overload
hundreds of requests share one CPU and each waits so long for its turn that its
downstream calls time out although the answers have arrived — the breakers then
open on healthy services (bench/README.md, run A). Waiting *before* a run starts
keeps the endpoint deadline and every attempt timeout measuring the downstream,
not the queue.

Why the limit adapts (``AdaptiveLimit``): the right number is about
``CPU share * critical path / CPU per request``; it changes with the machine,
the endpoints' latencies and the load beside the process, so a fixed number
either wastes the CPU (8 held two workers at 60 % of a core) or lets it
saturate. The signal is the process's **CPU pressure**: the share of wall time
its main thread was running *or waiting for a CPU* (``/proc/self/schedstat``:
run time + run-queue delay). It nears 1 exactly when the CPU it runs on is
saturated — by itself, by sibling workers or by anything else — and, unlike
event-loop lag, it shows before a queue of ready greenlets has built up (lag
tried first: it trailed admission by a critical path and breakers opened;
bench/README.md). The limit grows at most once per mean request duration while
requests wait for it and the pressure is low — by 10 % near the threshold, up
to twice over when the CPU is far from it (a slow start) — holds in a band,
and is cut quickly when the pressure or the loop lag says the CPU is saturated.
(Why the gate alone is not enough, and what keeps a late *read* from counting
as a late *answer*: docs/adr/0005.)
"""

from __future__ import annotations

import collections
import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("gateway.admission")

SCHEDSTAT = Path("/proc/self/schedstat")


class AdmissionGate:
    """At most ``limit`` aggregate requests of this process run at once; the next
    ones wait (costing no CPU) up to ``wait_s``, then are refused. ``limit`` 0
    turns the gate off. The limit may be changed while requests run."""

    def __init__(self, limit: int, wait_s: float) -> None:
        self.limit = limit
        self._wait_s = wait_s
        self.in_flight = 0
        self.completed = 0
        self.waited = False  # a request had to wait since the last ``take_waited``
        self._waiters: collections.deque[threading.Event] = collections.deque()
        self._lock = threading.Lock()
        self._on_first: threading.Event | None = None  # set by the next admission (``rest_until_busy``)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def enter(self) -> bool:
        """First come, first served: a freed slot goes to the longest waiter, never
        to a request that just arrived (barging made a few wait the whole wait_s)."""
        if self.limit <= 0:
            return True
        with self._lock:
            if self.in_flight < self.limit and not self._waiters:
                self.in_flight += 1
                on_first = self._on_first
                if on_first is not None:  # only the first request after a rest
                    self._on_first = None
                    on_first.set()
                return True
            self.waited = True
            ticket = threading.Event()
            self._waiters.append(ticket)
        try:
            admitted = ticket.wait(self._wait_s)
        except BaseException:  # the waiting greenlet killed (its client hung up, a worker stopping)
            self._forget(ticket)
            raise
        if admitted:
            return True
        with self._lock:
            if ticket.is_set():  # handed a slot just as the wait ended
                return True
            self._waiters.remove(ticket)
        return False

    def _forget(self, ticket: threading.Event) -> None:
        """A waiter that will never run: its place in the queue, or the slot it was handed, goes
        to the next one (left behind, the slot would be held for good: one less for the worker's life)."""
        with self._lock:
            if ticket.is_set():
                self.in_flight -= 1
                self._admit_waiters()
            else:
                self._waiters.remove(ticket)

    def leave(self) -> None:
        if self.limit <= 0:
            return
        with self._lock:
            self.in_flight -= 1
            self.completed += 1
            self._admit_waiters()

    def set_limit(self, limit: int) -> None:
        """A lower limit lets running requests finish; a higher one admits waiters now."""
        if self.limit <= 0 or limit <= 0:
            return  # an off gate stays off (it counts nothing)
        with self._lock:
            self.limit = limit
            self._admit_waiters()

    def rest_until_busy(self) -> threading.Event | None:
        """An event the next admitted request sets, or None when a request runs or waits now.
        (Under the gate's lock, so no admission can fall between the look and the promise.)"""
        with self._lock:
            if self.in_flight or self._waiters:
                return None
            self._on_first = threading.Event()
            return self._on_first

    def take_waited(self) -> bool:
        with self._lock:
            waited, self.waited = self.waited or bool(self._waiters), False
            return waited

    def _admit_waiters(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            self.in_flight += 1
            self._waiters.popleft().set()  # the slot passes straight to it


class SchedstatReader:
    """(seconds on a CPU, seconds runnable but waiting for one) of this process's main
    thread, or None where the kernel does not provide them.

    The file is read through one descriptor kept open: a ``pread`` from offset 0 makes the
    kernel write it afresh. Opening, reading and closing it on every step (ten a second,
    whatever the load) was 2 % of an idle worker's CPU samples at 10 clients
    (bench/README.md, round 13; 6 µs against 0.35 µs warm). ``/proc/self`` names the
    process that opens it, so a forked child opens its own."""

    def __init__(self, path: Path = SCHEDSTAT) -> None:
        self._path = path
        self._fd: int | None = None
        self._pid = 0

    def __call__(self) -> tuple[float, float] | None:
        try:
            if self._fd is None or self._pid != os.getpid():
                self._fd, self._pid = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC), os.getpid()
            running_ns, waiting_ns, _ = os.pread(self._fd, 256, 0).split()
            return int(running_ns) / 1e9, int(waiting_ns) / 1e9
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    __del__ = close  # a gate replaced by a new install (tests) lets its descriptor go


class CpuPressure:
    """Share of the wall time since the last call that this process ran or waited for a CPU."""

    def __init__(
        self,
        read: Callable[[], tuple[float, float] | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read or SchedstatReader()
        self._clock = clock
        self._last = self._sample()

    @property
    def available(self) -> bool:
        return self._last is not None

    def __call__(self) -> float | None:
        now = self._sample()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        wall = now[0] - last[0]
        return ((now[1] - last[1]) + (now[2] - last[2])) / wall

    def _sample(self) -> tuple[float, float, float] | None:
        stat = self._read()
        return None if stat is None else (self._clock(), stat[0], stat[1])


@dataclass(frozen=True, slots=True)
class AdaptivePolicy:
    start: int = 8
    minimum: int = 2
    maximum: int = 512
    period_s: float = 0.1
    grow_below: float = 0.85  # pressure under which a waited-for limit grows
    cut_above: float = 0.97  # pressure over which it is cut
    lag_cut_s: float = 0.05  # a timer this late means ready work already queues
    grow_factor: float = 1.10  # the least growth of one step (+1)
    max_grow_factor: float = 2.0  # the most: slow start while the CPU is far from saturated
    cut_factor: float = 0.75
    report_every: int = 100  # periods between two log lines with the limit and its inputs
    headroom: float = 1.25  # the limit stays within this factor of the recent peak of running requests
    peak_window: int = 20  # periods the recent peak looks back over (2 s)
    smoothing: float = 0.2  # weight of a new period in the running/finished averages
    rest_after: int = 20  # idle periods (none running or waiting) after which the steps pause until a request


class AdaptiveLimit:
    """Moves a gate's limit once per period from CPU pressure and loop lag.

    Two guards against overshoot, because what an admitted request costs shows up
    only as its downstream answers come back: the limit grows at most once per
    mean request duration (Little's law over the period: requests running ÷
    requests finished per second), so each step is seen before the next; and it
    never stands far above what is used (``headroom`` over the recent peak), so a
    sudden crowd cannot all be let in on a limit grown during a lighter load."""

    def __init__(
        self,
        gate: AdmissionGate,
        pressure: Callable[[], float | None],
        policy: AdaptivePolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gate = gate
        self.policy = policy or AdaptivePolicy()
        self._pressure = pressure
        self._clock = clock
        self._limit = float(gate.limit)
        self._steps = 0
        self._completed = gate.completed
        self._last_step = clock()
        self._last_growth = -math.inf
        self._running_mean = 0.0
        self._finished_per_s = 0.0
        self._peaks: collections.deque[int] = collections.deque(maxlen=self.policy.peak_window)
        self._stopped = threading.Event()
        self._resting: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def mean_duration_s(self) -> float:
        """Little's law: mean running ÷ finished per second (0 before anything finished)."""
        return self._running_mean / self._finished_per_s if self._finished_per_s > 0 else 0.0

    def step(self, lag_s: float = 0.0) -> None:
        policy = self.policy
        now = self._clock()
        self._observe_load(now)
        pressure = self._pressure()
        waited = self.gate.take_waited()
        grown = False
        if lag_s > policy.lag_cut_s or (pressure is not None and pressure > policy.cut_above):
            self._limit = max(policy.minimum, self._limit * policy.cut_factor)
        elif (
            waited
            and pressure is not None
            and pressure < policy.grow_below
            and now - self._last_growth >= max(policy.period_s, self.mean_duration_s())
        ):
            self._limit = min(policy.maximum, self._limit * _growth(policy, pressure) + 1)
            self._last_growth = now
            grown = True
        ceiling = max(policy.start, math.ceil(max(self._peaks, default=0) * policy.headroom) + 1)
        if not grown:  # a step just taken stands (the waiters fill it at once, the peak follows)
            self._limit = min(self._limit, ceiling)
        if pressure is not None and pressure < policy.grow_below and lag_s <= policy.lag_cut_s:
            self._limit = max(self._limit, min(policy.maximum, self._room(pressure)))
        limit = max(policy.minimum, math.floor(self._limit))
        if limit != self.gate.limit:
            self.gate.set_limit(limit)
        self._steps += 1
        if self._steps % policy.report_every == 0:
            logger.info(
                "admission: limit %d, %d running, %d waiting, cpu pressure %s, loop lag %.0f ms, mean request %.0f ms",
                limit,
                self.gate.in_flight,
                self.gate.waiting,
                "n/a" if pressure is None else f"{pressure:.2f}",
                lag_s * 1000,
                self.mean_duration_s() * 1000,
            )

    def _room(self, pressure: float) -> float:
        """What the CPU can take now without a growth step: the fewest requests running over
        the last mean request duration — a load whose CPU the pressure has fully seen —
        times the growth that pressure allows (it rises about linearly with the requests
        running; at most twice). A surge up to that is admitted at once: with growth steps
        alone every surge waited for them, spaced a mean duration apart (a load of 100
        clients restarted: p99 +142 ms against +81 without the gate, bench/README.md,
        round 13). While the limit is still growing the running count of a duration ago is
        at most half of it, so a crowd at an idle or lightly loaded worker still comes in
        step by step; near saturation (pressure over ``grow_below``, loop lag) nothing is
        added."""
        duration = self.mean_duration_s()
        periods = math.ceil(duration / self.policy.period_s) if duration > 0 else 0
        if periods <= 0 or len(self._peaks) <= periods:
            return 0.0
        seen = min(itertools.islice(reversed(self._peaks), periods + 1))
        return seen * _growth(self.policy, pressure)

    def _observe_load(self, now: float) -> None:
        elapsed = now - self._last_step
        self._last_step = now
        completed, self._completed = self.gate.completed - self._completed, self.gate.completed
        running = self.gate.in_flight
        self._peaks.append(running)
        if elapsed > 0:
            alpha = self.policy.smoothing
            self._running_mean += alpha * (running - self._running_mean)
            self._finished_per_s += alpha * (completed / elapsed - self._finished_per_s)

    def run_forever(self, sleep: Callable[[float], object] | None = None) -> None:
        """A step per period until ``stop``; ``sleep`` (default: a wait that ``stop`` ends) between.

        An idle worker's steps were most of its own CPU (~3 ms a second: bench/README.md,
        round 10), and change nothing once ``rest_after`` periods have passed without a
        request: the recent peak is then 0, so the limit rests at or below ``start`` and
        no step grows it (nobody waits). So the steps pause there until the next request
        is admitted, and resume with that request as a step would have found it."""
        period = self.policy.period_s
        sleep = self._stopped.wait if sleep is None else sleep
        idle_periods = 0
        while not self._stopped.is_set():
            started = time.monotonic()
            sleep(period)
            if self._stopped.is_set():
                return
            lag = time.monotonic() - started - period
            try:
                self.step(lag_s=max(0.0, lag))
            except Exception:  # the gate keeps its last limit; serving goes on
                logger.exception("admission: could not adjust the limit")
            idle_periods = 0 if self.gate.in_flight or self.gate.waiting else idle_periods + 1
            if idle_periods >= self.policy.rest_after:
                idle_periods = 0
                self._rest()

    def _rest(self) -> None:
        """Wait, taking no step, until the gate admits a request (or ``stop``)."""
        busy = self.gate.rest_until_busy()
        if busy is None:
            return
        self._resting = busy
        if not self._stopped.is_set():  # stop() sets ``_stopped`` before it looks at ``_resting``
            busy.wait()
        self._resting = None
        # The rest is not a period: the next step measures pressure and throughput from now on.
        self._pressure()
        self._last_step = self._clock()

    def start(self) -> None:
        """In a daemon thread (a greenlet in a gevent-patched worker)."""
        self._thread = threading.Thread(target=self.run_forever, name="admission-limit", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """End ``run_forever`` (its current wait included) and wait for the thread ``start``
        made. A worker never calls it (the thread dies with the process); a process that
        outlives the gateway it served does (the tests, before pytest closes its streams)."""
        self._stopped.set()
        resting = self._resting
        if resting is not None:
            resting.set()
        if self._thread is not None:
            self._thread.join(timeout_s)


def _growth(policy: AdaptivePolicy, pressure: float) -> float:
    """How much one step grows the limit: in proportion to the room left under ``grow_below``
    (CPU pressure rises about linearly with the requests running, so ``grow_below / pressure``
    aims at the threshold in one step), between ``grow_factor`` and ``max_grow_factor``. A
    limit left at ``start`` by a quiet spell thus reaches a sudden crowd's need in a few
    request durations instead of ~20 (bench/README.md, round 8)."""
    if pressure <= 0:
        return policy.max_grow_factor
    return min(policy.max_grow_factor, max(policy.grow_factor, policy.grow_below / pressure))


def gate_from_settings(max_in_flight: str, wait_s: float) -> tuple[AdmissionGate, AdaptiveLimit | None]:
    """``GATEWAY_MAX_IN_FLIGHT``: ``auto`` (adaptive; a fixed 8 where the kernel gives no
    CPU pressure), a number (fixed), or ``0`` (no gate)."""
    value = max_in_flight.strip().lower()
    if value != "auto":
        return AdmissionGate(int(value), wait_s), None
    policy = AdaptivePolicy()
    gate = AdmissionGate(policy.start, wait_s)
    pressure = CpuPressure()
    if not pressure.available:
        logger.warning("admission: no /proc/self/schedstat; a fixed limit of %d per process", policy.start)
        return gate, None
    return gate, AdaptiveLimit(gate, pressure, policy)
