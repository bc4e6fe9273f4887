"""Rate-limit counters shared by every gateway process: GCRA in one Lua script.

The script gets every bucket of a request (KEYS) and ``now`` (ARGV), so a
request costs one round trip and the check-then-count is atomic across
processes. It mirrors ``rate_store.gcra`` line for line; the shared behaviour
tests hold both to the same answers. Time comes from the caller (the gateway's
wall clock), which keeps tests free of sleeps; hosts are expected to run NTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import Redis

from orchestration import redis_lane
from orchestration.edge.rate_store import TOLERANCE_S, Bucket, BucketState
from orchestration.edge.redis_boundary import RedisBoundary

ACQUIRE = """
local now = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local replies, tats, admitted = {}, {}, true
for i = 1, #KEYS do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  local interval = window / limit
  local stored = redis.call('GET', KEYS[i])
  local base = now
  if stored then base = math.max(tonumber(stored), now) end
  local new_tat = base + interval
  local allow_at = new_tat - window
  if allow_at - now > tolerance then
    admitted = false
    replies[i] = {0, 0, string.format('%.6f', base - now), string.format('%.6f', allow_at - now)}
  else
    local remaining = math.max(0, math.floor((window - (new_tat - now)) / interval + 1e-6))
    tats[i] = new_tat
    replies[i] = {1, remaining, string.format('%.6f', new_tat - now), '0'}
  end
end
if admitted then
  for i = 1, #KEYS do
    local ttl_ms = math.ceil((tats[i] - now) * 1000) + 1
    redis.call('SET', KEYS[i], string.format('%.6f', tats[i]), 'PX', ttl_ms)
  end
end
return replies
"""


class RedisRateStore:
    def __init__(self, client: Redis, boundary: RedisBoundary) -> None:
        # EVALSHA on the hot path's own lane, the runs of one loop iteration in one round trip
        self._script = redis_lane.register(client, ACQUIRE)
        self._boundary = boundary

    def acquire(self, buckets: Sequence[Bucket], now: float) -> tuple[BucketState, ...]:
        if not buckets:
            return ()
        args: list[Any] = [repr(now), repr(TOLERANCE_S)]
        for bucket in buckets:
            args += [bucket.limit, repr(float(bucket.window_s))]
        keys = [bucket.key for bucket in buckets]
        replies = self._boundary.call(lambda: self._script.shared(keys=keys, args=args))
        return tuple(_state(reply) for reply in replies)


def _state(reply: Sequence[Any]) -> BucketState:
    allowed, remaining, reset_s, retry_after_s = reply
    return BucketState(bool(int(allowed)), int(remaining), float(reset_s), float(retry_after_s))
