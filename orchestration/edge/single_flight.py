"""Coalesce concurrent calls for one key inside a process (the stampede guard).

The first caller for a key runs the function; callers arriving while it runs
wait for its value instead of running it again. A follower that waits longer
than ``wait_s``, or whose leader raised, runs the function itself, so a stuck
leader delays others by at most ``wait_s``. Under gevent the ``threading``
primitives are patched into greenlet-aware ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Flight(Generic[T]):
    done: threading.Event = field(default_factory=threading.Event)
    value: T | None = None
    succeeded: bool = False


class SingleFlight(Generic[T]):
    def __init__(self) -> None:
        self._flights: dict[str, _Flight[T]] = {}
        self._lock = threading.Lock()

    def do(self, key: str, function: Callable[[], T], *, wait_s: float) -> tuple[T, bool]:
        """``function()``'s value, and whether it was shared from another caller."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if flight.done.wait(wait_s) and flight.succeeded:
                return flight.value, True  # type: ignore[return-value]
            return function(), False
        try:
            flight.value = function()
            flight.succeeded = True
            return flight.value, False
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
