"""The retry budget shared by the workers of one host through Redis.

Calls are counted locally and sent in batches (at most every ``flush_s``, and
with every retry decision), so a call costs no round trip; a retry decision is
one atomic Lua script that adds this worker's pending calls, drops buckets older
than the window, and grants the retry only if the budget allows it. Calls of
other workers not yet flushed are missing from the sum, which only makes the
budget stricter for at most ``flush_s``.

Redis down: the per-process store decides for ``retry_after_s`` (logged, told to
the observer as ``on_store_error("retry_budget")``), never an error to a caller.
"""

from __future__ import annotations

from typing import Any

from redis import Redis
from redis.exceptions import RedisError

from orchestration import redis_lane
from orchestration.native_lock import allocate_lock
from orchestration.observer import NullObserver, Observer
from orchestration.plan import RetryPolicy
from orchestration.resilience.retry_budget import WINDOW_S, InProcessRetryBudgetStore

# KEYS[1]: hash of "c<second>" (calls) and "r<second>" (retries).
# ARGV: now second, window, spend (1|0), allowed percent, minimum per s, then pairs second, calls.
_SCRIPT = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 6, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], 'c' .. ARGV[i], ARGV[i + 1]) end
local all = redis.call('HGETALL', KEYS[1])
local calls, retries = 0, 0
for i = 1, #all, 2 do
  local field = all[i]
  if tonumber(string.sub(field, 2)) <= now - window then
    redis.call('HDEL', KEYS[1], field)
  elseif string.sub(field, 1, 1) == 'c' then
    calls = calls + tonumber(all[i + 1])
  else
    retries = retries + tonumber(all[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[1], (window + 5) * 1000)
if ARGV[3] ~= '1' then return 0 end
if retries < math.max(tonumber(ARGV[4]) / 100 * calls, tonumber(ARGV[5]) * window) then
  redis.call('HINCRBY', KEYS[1], 'r' .. ARGV[1], 1)
  return 1
end
return 0
"""


class RedisRetryBudgetStore:
    def __init__(
        self,
        client: Redis,
        *,
        scope: str,
        prefix: str = "gateway:",
        flush_s: float = 0.5,
        retry_after_s: float = 1.0,
        observer: Observer | None = None,
    ) -> None:
        self._script = redis_lane.register(client, _SCRIPT)
        self._prefix = f"{prefix}retry_budget:{scope}:"
        self._flush_s = flush_s
        self._retry_after_s = retry_after_s
        self._observer: Observer = observer or NullObserver()
        self._fallback = InProcessRetryBudgetStore()
        self._pending: dict[str, dict[int, int]] = {}
        self._flushed_at: dict[str, float] = {}
        self._down_until: float | None = None
        self._lock = allocate_lock()  # nothing waits under it: the script runs outside

    def on_call(self, service: str, now: float) -> None:
        self._fallback.on_call(service, now)  # ready to decide alone if Redis goes away
        second = int(now)
        with self._lock:
            pending = self._pending.get(service)
            if pending is None:  # not ``setdefault``: that builds a dict on every call
                pending = self._pending[service] = {}
            pending[second] = pending.get(second, 0) + 1
            due = now - self._flushed_at.get(service, 0.0) >= self._flush_s
        if due:
            self._run(service, RetryPolicy(), now, spend=False)

    def try_retry(self, service: str, policy: RetryPolicy, now: float) -> bool:
        granted = self._run(service, policy, now, spend=True)
        return self._fallback.try_retry(service, policy, now) if granted is None else granted

    def _run(self, service: str, policy: RetryPolicy, now: float, *, spend: bool) -> bool | None:
        if self._down_until is not None and now < self._down_until:
            return None
        with self._lock:
            pending = self._pending.pop(service, {})
            self._flushed_at[service] = now
        args: list[Any] = [int(now), WINDOW_S, int(spend), policy.budget_percent or 0, policy.budget_min_per_s or 0]
        for second, count in pending.items():
            args += [second, count]
        try:
            granted = self._script(keys=[self._prefix + service], args=args)
        except RedisError as error:
            self._down_until = now + self._retry_after_s
            self._observer.on_store_error("retry_budget", error)
            return None
        self._down_until = None
        return bool(granted)
