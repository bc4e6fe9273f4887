"""Where cached responses live: a store protocol and the in-process store.

An entry is an opaque payload with a TTL, indexed under each of its tags so a
purge by tag touches only the entries that carry it. A purge also leaves a
mark per tag: a response whose run started before that mark was computed from
data the purge declared stale, so ``put`` refuses to store it (no stale entry
sneaks in behind an invalidation). ``try_lock``/``unlock`` elect the one
request that fills a missing key. The Redis store (``redis_cache_store``) does
each operation atomically; the shared behaviour tests hold both to the same
answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

PURGE_MARK_TTL_S = 600.0  # longer than any run can take; a run older than that is not stored anyway


@dataclass(frozen=True, slots=True)
class StoredEntry:
    payload: bytes
    ttl_remaining_s: float


class CacheStore(Protocol):
    def get(self, key: str) -> StoredEntry | None: ...

    def put(self, key: str, payload: bytes, *, ttl_s: float, tags: Sequence[str], started_at: float) -> bool:
        """Store unless a tag was purged at or after ``started_at``; True when stored."""
        ...

    def try_lock(self, key: str, token: str, ttl_s: float) -> bool: ...

    def unlock(self, key: str, token: str) -> None: ...

    def purge(self, tags: Sequence[str]) -> int:
        """Delete every entry carrying any of ``tags``; the number deleted."""
        ...


@dataclass(slots=True)
class _Entry:
    payload: bytes
    expires_at: float


@dataclass(slots=True)
class _Memory:
    entries: dict[str, _Entry] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)
    purged_at: dict[str, float] = field(default_factory=dict)
    locks: dict[str, tuple[str, float]] = field(default_factory=dict)


class InProcessCacheStore:
    """Entries in dicts behind one lock (the embedded default), bounded in size."""

    def __init__(self, *, clock: Callable[[], float] = time.time, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._memory = _Memory()
        self._lock = threading.Lock()

    def get(self, key: str) -> StoredEntry | None:
        with self._lock:
            entry = self._memory.entries.get(key)
            now = self._clock()
            if entry is None or entry.expires_at <= now:
                return None
            return StoredEntry(entry.payload, entry.expires_at - now)

    def put(self, key: str, payload: bytes, *, ttl_s: float, tags: Sequence[str], started_at: float) -> bool:
        with self._lock:
            memory, now = self._memory, self._clock()
            if any(memory.purged_at.get(tag, float("-inf")) >= started_at for tag in tags):
                return False
            if len(memory.entries) >= self._max_entries:
                self._evict(now)
            memory.entries[key] = _Entry(payload, now + ttl_s)
            for tag in tags:
                memory.tags.setdefault(tag, set()).add(key)
            return True

    def try_lock(self, key: str, token: str, ttl_s: float) -> bool:
        with self._lock:
            held = self._memory.locks.get(key)
            if held is not None and held[1] > self._clock():
                return False
            self._memory.locks[key] = (token, self._clock() + ttl_s)
            return True

    def unlock(self, key: str, token: str) -> None:
        with self._lock:
            held = self._memory.locks.get(key)
            if held is not None and held[0] == token:
                del self._memory.locks[key]

    def purge(self, tags: Sequence[str]) -> int:
        with self._lock:
            memory, now = self._memory, self._clock()
            keys = set().union(*(memory.tags.pop(tag, set()) for tag in tags)) if tags else set()
            live = [k for k in keys if k in memory.entries and memory.entries[k].expires_at > now]
            for key in keys:
                memory.entries.pop(key, None)
            memory.purged_at.update(dict.fromkeys(tags, now))
            memory.purged_at = {t: at for t, at in memory.purged_at.items() if at > now - PURGE_MARK_TTL_S}
            return len(live)

    def _evict(self, now: float) -> None:
        """Drop expired entries, then the ones closest to expiry, down to 90%."""
        entries = self._memory.entries
        for key in [k for k, e in entries.items() if e.expires_at <= now]:
            del entries[key]
        excess = len(entries) - int(self._max_entries * 0.9)
        for key in sorted(entries, key=lambda k: entries[k].expires_at)[: max(0, excess)]:
            del entries[key]
        tags = {tag: keys & entries.keys() for tag, keys in self._memory.tags.items()}
        self._memory.tags = {tag: keys for tag, keys in tags.items() if keys}
