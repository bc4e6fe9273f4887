"""Cached responses shared by every gateway process, in Redis.

Keys (``prefix`` first):

    e:<hash>   the entry (payload), expiring with its TTL
    l:<hash>   the fill lock (a random token), expiring after ``ttl_s``
    t:<tag>    sorted set of entry keys carrying the tag, scored by expiry
    p:<tag>    when the tag was last purged (wall seconds), for ``put``'s check

The tag index is a sorted set scored by each entry's expiry, so ``put`` trims
members that already expired and the index cannot grow without bound under a
tag that is never purged. ``put`` and ``purge`` are Lua scripts (atomic: no
entry is stored between a purge's read and its delete). ``get`` reads the
payload and its PTTL in one round trip, so Age and max-age come from Redis
and not from the writer's clock. Purge marks and index scores use the injected
wall clock (the same one that stamps a run's start); hosts are expected to run
NTP, and a skew of a few milliseconds only narrows the stale-write guard.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis import Redis

from orchestration.edge.cache_store import PURGE_MARK_TTL_S, StoredEntry
from orchestration.edge.redis_boundary import RedisBoundary

PUT = """
local n = (#KEYS - 1) / 2
local started_at = tonumber(ARGV[3])
for i = 1, n do
  local mark = redis.call('GET', KEYS[1 + n + i])
  if mark and tonumber(mark) >= started_at then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ttl_ms = tonumber(ARGV[2])
for i = 1, n do
  local index = KEYS[1 + i]
  redis.call('ZREMRANGEBYSCORE', index, '-inf', ARGV[4])
  redis.call('ZADD', index, ARGV[5], KEYS[1])
  if redis.call('PTTL', index) < ttl_ms then redis.call('PEXPIRE', index, ttl_ms) end
end
return 1
"""

PURGE = """
local n = #KEYS / 2
local removed = 0
for i = 1, n do
  local members = redis.call('ZRANGE', KEYS[i], 0, -1)
  for first = 1, #members, 500 do
    removed = removed + redis.call('DEL', unpack(members, first, math.min(first + 499, #members)))
  end
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[n + i], ARGV[1], 'PX', ARGV[2])
end
return removed
"""

UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisCacheStore:
    def __init__(
        self,
        client: Redis,
        boundary: RedisBoundary,
        *,
        prefix: str = "gw:cache:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._clock = clock
        self._boundary = boundary
        self._prefix = prefix
        self._put = client.register_script(PUT)
        self._purge = client.register_script(PURGE)
        self._unlock = client.register_script(UNLOCK)

    def get(self, key: str) -> StoredEntry | None:
        entry_key = self._prefix + "e:" + key

        def read() -> list[Any]:
            pipe = self._client.pipeline(transaction=True)
            pipe.get(entry_key)
            pipe.pttl(entry_key)
            return pipe.execute()

        payload, pttl_ms = self._boundary.call(read)
        if payload is None or pttl_ms is None or int(pttl_ms) <= 0:
            return None
        return StoredEntry(bytes(payload), int(pttl_ms) / 1000)

    def put(self, key: str, payload: bytes, *, ttl_s: float, tags: Sequence[str], started_at: float) -> bool:
        now = self._clock()
        ttl_ms = max(1, math.ceil(ttl_s * 1000))
        keys = [self._prefix + "e:" + key]
        keys += [self._prefix + "t:" + tag for tag in tags] + [self._prefix + "p:" + tag for tag in tags]
        args: list[bytes | str | int] = [payload, ttl_ms, repr(started_at), repr(now), repr(now + ttl_s)]
        return bool(self._boundary.call(lambda: self._put(keys=keys, args=args)))

    def try_lock(self, key: str, token: str, ttl_s: float) -> bool:
        lock_key, ttl_ms = self._prefix + "l:" + key, max(1, math.ceil(ttl_s * 1000))
        return bool(self._boundary.call(lambda: self._client.set(lock_key, token, nx=True, px=ttl_ms)))

    def unlock(self, key: str, token: str) -> None:
        lock_key = self._prefix + "l:" + key
        self._boundary.call(lambda: self._unlock(keys=[lock_key], args=[token]))

    def purge(self, tags: Sequence[str]) -> int:
        if not tags:
            return 0
        keys = [self._prefix + "t:" + tag for tag in tags] + [self._prefix + "p:" + tag for tag in tags]
        args: list[str | int] = [repr(self._clock()), math.ceil(PURGE_MARK_TTL_S * 1000)]
        return int(self._boundary.call(lambda: self._purge(keys=keys, args=args)))
