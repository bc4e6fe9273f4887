"""A/B for bench/micro.py --ab --redis: B = the rate-limit layer as of round 10 (a subject's
buckets remembered per rule set, the EVALSHA put together from kept RESP parts, one
``send`` instead of gevent's ``sendall``); A = round 9's (keys formatted, the command
packed and ``sendall`` per request)."""

from collections.abc import Sequence
from typing import Any

from orchestration import redis_lane
from orchestration.edge import ratelimit, redis_rate_store
from orchestration.edge.rate_store import TOLERANCE_S, Bucket, BucketState

_B = (ratelimit.RateLimiter.check, redis_rate_store.RedisRateStore.acquire, redis_lane.Lane._once)


def _check(self: Any, *, layer_rules: Any, endpoint_rules: Any, subject: Any) -> Any:
    scoped = [*self._buckets(layer_rules, subject, "layer"), *self._buckets(endpoint_rules, subject, "endpoint")]
    if not scoped:
        return ratelimit.RateVerdict()
    try:
        states = self._store.acquire([bucket for _, bucket in scoped], self._clock())
    except ratelimit.StoreUnavailable as error:
        self._metrics.on_store_error("rate_limit", error)
        return ratelimit.RateVerdict(enforced=False)
    checked = [ratelimit._Checked(s, b, st) for (s, b), st in zip(scoped, states, strict=True)]
    return self._verdict(checked)


def _acquire(self: Any, buckets: Sequence[Bucket], now: float) -> tuple[BucketState, ...]:
    if not buckets:
        return ()
    args: list[Any] = [repr(now), repr(TOLERANCE_S)]
    for bucket in buckets:
        args += [bucket.limit, repr(float(bucket.window_s))]
    keys = [bucket.key for bucket in buckets]
    replies = self._boundary.call(lambda: self._script(keys=keys, args=args))
    return tuple(redis_rate_store._state(reply) for reply in replies)


def _once(self: Any, packed: bytes, replies: int) -> list[Any]:
    conn = self._take()
    try:
        conn.sock.sendall(packed)
        answers = [self._read(conn) for _ in range(replies)]
    except BaseException as error:
        conn.close()
        if isinstance(error, OSError):
            raise redis_lane._socket_error(error) from None
        raise
    for answer in answers:
        if isinstance(answer, redis_lane.ReadOnlyError) and self._sentinel_pool is not None:
            conn.close()
            raise redis_lane.RedisConnectionError("The previous master is now a slave")
    self._give_back(conn)
    return answers


def toggle(on: bool) -> None:
    check, acquire, once = _B if on else (_check, _acquire, _once)
    ratelimit.RateLimiter.check = check  # type: ignore[method-assign]
    redis_rate_store.RedisRateStore.acquire = acquire  # type: ignore[method-assign]
    redis_lane.Lane._once = once  # type: ignore[method-assign]
