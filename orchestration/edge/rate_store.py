"""Rate-limit counters: the GCRA rule, a store protocol and the in-process store.

GCRA (generic cell rate algorithm) keeps one number per bucket, the theoretical
arrival time (TAT). A bucket of ``limit`` requests per ``window_s`` admits a
burst of ``limit`` and then one request every ``window_s / limit`` seconds; it
has no window boundary, so there is no double burst where a fixed window would
reset. One float per key keeps memory flat however large the limit is.

A request is checked against several buckets at once (user, ip, endpoint,
global) and is all-or-nothing: it is counted in every bucket only if every
bucket admits it, so a refused request does not spend anyone's quota. The Redis
store runs the same rule in one Lua script (``redis_rate_store``); the
behaviour tests run against both with an injected ``now``.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# Both stores admit a request up to 1 ms early, which absorbs float rounding
# (3 x 1/3 s) and the microsecond precision Redis stores the TAT with.
TOLERANCE_S = 0.001


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    limit: int
    window_s: float


@dataclass(frozen=True, slots=True)
class BucketState:
    """A bucket's answer to one request."""

    allowed: bool
    remaining: int  # requests still admitted right now, after this one
    reset_s: float  # until the bucket is full again (all of ``limit`` available)
    retry_after_s: float  # until this request would be admitted (0 when allowed)


class RateStore(Protocol):
    def acquire(self, buckets: Sequence[Bucket], now: float) -> tuple[BucketState, ...]:
        """Check every bucket; count the request in all of them only if all admit it."""
        ...


def gcra(tat: float | None, bucket: Bucket, now: float) -> tuple[BucketState, float]:
    """One bucket's decision and its TAT after admitting the request."""
    interval = bucket.window_s / bucket.limit
    base = now if tat is None or tat < now else tat
    new_tat = base + interval
    allow_at = new_tat - bucket.window_s
    if allow_at - now > TOLERANCE_S:
        return BucketState(False, 0, base - now, allow_at - now), new_tat
    remaining = math.floor((bucket.window_s - (new_tat - now)) / interval + 1e-6)
    return BucketState(True, max(0, remaining), new_tat - now, 0.0), new_tat


class InProcessRateStore:
    """Counters in a dict (the embedded default and the reference for Redis)."""

    def __init__(self, *, prune_every: int = 4096) -> None:
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._prune_every = prune_every
        self._writes = 0

    def acquire(self, buckets: Sequence[Bucket], now: float) -> tuple[BucketState, ...]:
        with self._lock:
            decisions = [gcra(self._tats.get(b.key), b, now) for b in buckets]
            states = tuple(state for state, _ in decisions)
            if all(state.allowed for state in states):
                for bucket, (_, new_tat) in zip(buckets, decisions, strict=True):
                    self._tats[bucket.key] = new_tat
                self._maybe_prune(now)
            return states

    def _maybe_prune(self, now: float) -> None:
        """Forget buckets that are full again; they hold no information."""
        self._writes += 1
        if self._writes % self._prune_every == 0:
            self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
