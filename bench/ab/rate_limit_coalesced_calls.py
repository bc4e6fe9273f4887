#!/usr/bin/env python
"""CPU per rate-limit check in isolation, under gevent: ``k`` requests reaching the limiter
in one loop iteration, each check a round trip of its own (A, ``LaneScript.__call__``) or
the ``k`` checks in one (B, ``LaneScript.shared``). Issue 17; the in-process A/B of the
whole checkout is ``bench/ab/rate_limit_coalesced.py``.

    taskset -c 1 python bench/ab/rate_limit_coalesced_calls.py --redis redis://127.0.0.1:6379/11

A wave spawns ``k`` greenlets that each run ``RateLimiter.check`` (four buckets, as the
checkout: user, ip and global for the layer, one for the endpoint; limits never reached)
and joins them; ``process_time`` per check over ``--waves`` waves, variants in ABBA
blocks, medians of the blocks. The greenlets' spawn and join are in both variants; Redis's
own CPU is not counted (another process)."""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import gevent  # noqa: E402
import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.retry import Retry  # noqa: E402

from orchestration import redis_lane  # noqa: E402
from orchestration.edge.ratelimit import RateLimiter, RateSubject  # noqa: E402
from orchestration.edge.redis_boundary import RedisBoundary  # noqa: E402
from orchestration.edge.redis_rate_store import RedisRateStore  # noqa: E402
from orchestration.plan import RateLimitRule  # noqa: E402

_SHARED = redis_lane.LaneScript.shared
_LAYER = [
    RateLimitRule(scope="user", limit=10**9, window_s=60),
    RateLimitRule(scope="ip", limit=10**9, window_s=60),
    RateLimitRule(scope="global", limit=10**9, window_s=1),
]
_ENDPOINT = [RateLimitRule(scope="endpoint", limit=10**9, window_s=60)]


def toggle(on: bool) -> None:
    redis_lane.LaneScript.shared = _SHARED if on else redis_lane.LaneScript.__call__  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("-k", type=int, nargs="+", default=[1, 2, 4, 10, 25], help="checks per loop iteration")
    parser.add_argument("--waves", type=int, default=2000, help="checks per block (in waves of k)")
    parser.add_argument("--blocks", type=int, default=12, help="ABBA block pairs")
    args = parser.parse_args()
    client = redis.Redis.from_url(
        args.redis, socket_connect_timeout=0.25, socket_timeout=0.25, retry=Retry(NoBackoff(), 1)
    )
    limiter = RateLimiter(RedisRateStore(client, RedisBoundary()))
    subjects = [RateSubject("checkout", f"10.0.{i // 250}.{i % 250}", f"user-{i}") for i in range(100)]

    def check(i: int) -> None:
        verdict = limiter.check(layer_rules=_LAYER, endpoint_rules=_ENDPOINT, subject=subjects[i % 100])
        assert verdict.enforced and verdict.error is None

    def block(k: int) -> float:
        waves: int = max(1, args.waves // k)
        cpu0 = time.process_time()
        for _ in range(waves):
            gevent.joinall([gevent.spawn(check, i) for i in range(k)])
        return float((time.process_time() - cpu0) / (waves * k) * 1e6)

    for on in (False, True):  # warm both
        toggle(on)
        block(10)
    print(f"| k | A µs/check | B µs/check | B/A | B cheaper in | ({args.blocks} ABBA pairs)")
    print("|---:|---:|---:|---:|---:|")
    for k in args.k:
        cpu: dict[bool, list[float]] = {False: [], True: []}
        for index in range(args.blocks):
            for on in (False, True) if index % 2 == 0 else (True, False):
                toggle(on)
                cpu[on].append(block(k))
        a, b = statistics.median(cpu[False]), statistics.median(cpu[True])
        wins = sum(1 for x, y in zip(cpu[False], cpu[True], strict=True) if y < x)
        print(f"| {k} | {a:.1f} | {b:.1f} | {b / a:.3f} | {wins} of {args.blocks} |", flush=True)
    toggle(True)


if __name__ == "__main__":
    main()
