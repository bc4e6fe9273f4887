"""The one place Redis errors become ``StoreUnavailable`` (and a short outage latch).

Edge stores call Redis through ``RedisBoundary.call``. Any ``RedisError``
(refused, timed out, script error) is translated, so edge code catches one
exception and fails open. After a failure the boundary answers "unavailable" at
once for ``retry_after_s``: with a blackholed Redis every call would otherwise
wait for the socket timeout, and a request makes two or three of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class StoreUnavailable(Exception):
    """A shared store could not answer; the caller fails open."""


class RedisBoundary:
    def __init__(self, *, retry_after_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._retry_after_s = retry_after_s
        self._clock = clock
        self._down_until = 0.0
        self._lock = threading.Lock()

    def call(self, operation: Callable[[], T]) -> T:
        if self._clock() < self._down_until:
            raise StoreUnavailable("Redis is marked unavailable")
        try:
            return operation()
        except RedisError as error:
            self._mark_down(error)
            raise StoreUnavailable(type(error).__name__) from error

    def _mark_down(self, error: RedisError) -> None:
        with self._lock:
            first = self._clock() >= self._down_until
            self._down_until = self._clock() + self._retry_after_s
        if first:
            logger.warning(
                "Redis unreachable (%s); edge fails open for %.1fs", type(error).__name__, self._retry_after_s
            )
