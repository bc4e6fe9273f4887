"""A lock that is the operating system's even in a gevent-patched process.

gevent's patched ``threading.Lock`` is a Python-level semaphore: creating one costs
~0.5 µs and each ``with`` ~0.4 µs (bench/ab/resilience_features.py: a hedged call made
two, its retry budget took one per call). A critical section that never waits (no I/O,
no sleep, no other lock) cannot switch greenlets, so between greenlets an OS lock is
never contended and never blocks the hub; between real threads (an unpatched process,
``ThreadSpawner``) it is the ordinary lock. Only for such sections: one that may wait
inside would block every greenlet of the thread.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable


def _original() -> Callable[[], _thread.LockType]:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a dependency
        return _thread.allocate_lock
    allocate: Callable[[], _thread.LockType] = monkey.get_original("_thread", "allocate_lock")
    return allocate


allocate_lock = _original()
