"""Connections spread evenly over a server's workers (gunicorn's gevent workers share one socket).

Every worker waits on the same listening socket, and the one that happens to be running when
connections arrive takes them: measured with wrk opening 100 keep-alive connections to two
workers, the split was 74 / 26 (bench/README.md, round 11), and it stays for the connections'
lives. The busier worker's loop then serves three times the requests of the other's; its
per-process limits (bulkheads, the adaptive admission limit) fill first — 1,260 partial
answers in one 20-s point while the other worker had room — and its queue sets the tail.

The fix keeps the shared socket: the workers publish their open connection counts in a small
table of shared memory the master makes before forking, and a worker that is more than
``SLACK`` connections above the least-loaded live worker lets the next connection go: it stops
watching the socket for ``DEFER_S``, so the other workers (woken by the same readiness) take
it. Once per connection: after the pause it takes the next one unasked, so a worker that is
busy, draining or gone costs a new connection at most ``DEFER_S``, and nobody is ever refused
(a worker still booting has not joined the table: nobody waits for it). The master assigns
each worker its slot before the fork and clears it when the worker exits (``gunicorn.conf.py``:
``pre_fork``, ``child_exit``).
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable
from typing import Any

from gevent.server import StreamServer

SLOTS = 1024  # workers a master can have at once, old and new together during a reload
SLACK = 1  # connections above the least-loaded worker before a worker lets one go
DEFER_S = 0.02  # how long a busier worker leaves a pending connection to the others

_HIGH_WATER = 0  # int 0: slots in use so far (readers scan only those); slot i at ints 1 + 2i (pid, open)


class AcceptTable:
    """The shared table: per slot, the worker's pid (0: free) and its open connections."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 4 * (1 + 2 * SLOTS))  # anonymous and shared: inherited by every fork
        self.ints = memoryview(self._memory).cast("i")

    def claim(self, taken: Iterable[Any]) -> int | None:
        """The master's pick for a worker about to be forked: the lowest slot no live worker holds."""
        used = {getattr(worker, "accept_slot", None) for worker in taken}
        for slot in range(SLOTS):
            if slot not in used:
                self._set(slot, pid=0, open_connections=0)
                self.ints[_HIGH_WATER] = max(self.ints[_HIGH_WATER], slot + 1)
                return slot
        return None  # more workers than slots: this one takes part in no balancing

    def release(self, slot: int | None) -> None:
        """The master, when a worker exits: its connections are gone, it competes no more."""
        if slot is not None:
            self._set(slot, pid=0, open_connections=0)

    def _set(self, slot: int, *, pid: int, open_connections: int) -> None:
        self.ints[1 + 2 * slot] = pid
        self.ints[2 + 2 * slot] = open_connections


class WorkerSlot:
    """One worker's side of the table: counts its connections, decides whether to let one go."""

    def __init__(self, table: AcceptTable, slot: int) -> None:
        self._ints = table.ints
        self._pid_at = 1 + 2 * slot
        self._open_at = 2 + 2 * slot

    def join(self, pid: int) -> None:
        """Called by the worker once it is ready to accept: from now on the others count it."""
        self._ints[self._open_at] = 0
        self._ints[self._pid_at] = pid

    def opened(self) -> None:
        self._ints[self._open_at] += 1  # only this process writes its slot: no lock needed

    def closed(self) -> None:
        self._ints[self._open_at] -= 1

    def over_share(self) -> bool:
        """True when some other live worker has more than ``SLACK`` connections fewer than this one."""
        ints = self._ints
        least = mine = ints[self._open_at]
        for pid_at in range(1, 1 + 2 * ints[_HIGH_WATER], 2):
            if pid_at != self._pid_at and ints[pid_at] and ints[pid_at + 1] < least:
                least = ints[pid_at + 1]
        return mine - least > SLACK


class BalancedStreamServer(StreamServer):  # type: ignore[misc]  # gevent has no type hints
    """gevent's ``StreamServer`` that leaves a pending connection to the other workers for
    ``DEFER_S`` when its worker is over its share, then takes it if it still waits."""

    slot: WorkerSlot  # set by ``bound``

    @classmethod
    def bound(cls, slot: WorkerSlot) -> type[BalancedStreamServer]:
        """This class with the worker's slot, for gunicorn to construct as its ``StreamServer``."""
        return type(cls.__name__, (cls,), {"slot": slot})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._take_next_until = 0.0  # loop time: after a pause, the next connection is ours unasked
        self._pause: Any = None

    def do_read(self) -> Any:
        if self.loop.now() < self._take_next_until:
            self._take_next_until = 0.0
        elif self.slot.over_share():
            self.stop_accepting()  # the socket stays readable for the other workers
            self._pause = self.loop.timer(DEFER_S)
            self._pause.start(self._end_pause)
            return None
        return super().do_read()

    def _end_pause(self) -> None:
        self._pause = None
        self._take_next_until = self.loop.now() + DEFER_S  # what waited all the pause; not a later arrival
        self._start_accepting_if_started()  # not after gunicorn closed the server

    def stop_accepting(self) -> None:
        super().stop_accepting()
        if self._pause is not None:
            self._pause.close()
            self._pause = None
