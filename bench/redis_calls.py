#!/usr/bin/env python
"""CPU per hot-path Redis call, in isolation, under gevent (issue 17 round 8).

    python bench/redis_calls.py --redis redis://127.0.0.1:6379/9 [-n 3000] [--repeats 5]

Three ways of sending the rate-limit script (4 buckets) and one way less for a batch of
five breaker ``PEEK`` scripts: redis-py as the gateway built it before (``Script`` object;
a pipeline for the batch), redis-py on a leaner pool (a ``ConnectionPool`` subclass
without the deprecated-arguments wrapper and the per-command ``can_read`` poll:
measured only, it is not safe, see orchestration/redis_lane.py), and the lane
(``orchestration.redis_lane``). Variants interleaved, ``process_time`` per call, the
median of the repeats. Redis's own CPU is not counted (another process).
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402
from redis.backoff import NoBackoff  # noqa: E402
from redis.connection import ConnectionPool  # noqa: E402
from redis.retry import Retry  # noqa: E402

from orchestration import redis_lane  # noqa: E402
from orchestration.edge.redis_rate_store import ACQUIRE  # noqa: E402
from orchestration.resilience import breaker_lua  # noqa: E402


class LeanPool(ConnectionPool):
    """Measurement only: no wrapper, no poll (a connection given back mid-reply would be reused)."""

    def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        self._checkpid()
        with self._lock:
            try:
                connection = self._available_connections.pop()
            except IndexError:
                connection = self.make_connection()
            self._in_use_connections.add(connection)
        connection.connect()
        return connection

    def release(self, connection: Any) -> None:
        with self._lock:
            self._in_use_connections.discard(connection)
            self._available_connections.append(connection)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()

    def client(pool_class: type[ConnectionPool] = ConnectionPool) -> redis.Redis:
        pool = pool_class.from_url(
            options.redis, socket_connect_timeout=0.25, socket_timeout=0.25, retry=Retry(NoBackoff(), 1)
        )
        return redis.Redis(connection_pool=pool)

    keys = [f"bench:rl:{i}" for i in range(4)]

    def rate_args() -> list[Any]:
        args: list[Any] = [repr(time.time()), repr(0.0)]
        for _ in keys:
            args += [1_000_000, repr(60.0)]
        return args

    def breaker_keys(service: str) -> list[str]:
        base = f"bench:breaker:{{{service}}}"
        return [base, f"{base}:failures", f"{base}:rate"]

    def peek_args() -> list[Any]:
        return [repr(time.time()), 5, "30.0", "10.0", 1, "30s", "10s", 0, "0.0", ""]

    plain = client().register_script(ACQUIRE)
    lean = client(LeanPool).register_script(ACQUIRE)
    lane = redis_lane.register(client(), ACQUIRE)
    peek_py = redis_lane._PyScript(client(), breaker_lua.PEEK)
    peek_lane = redis_lane.register(client(), breaker_lua.PEEK)
    variants = {
        "rate limit, redis-py": lambda: plain(keys=keys, args=rate_args()),
        "rate limit, redis-py lean pool": lambda: lean(keys=keys, args=rate_args()),
        "rate limit, lane": lambda: lane(keys=keys, args=rate_args()),
        "5 PEEK, redis-py pipeline": lambda: peek_py.many([(breaker_keys(s), peek_args()) for s in "abcde"]),
        "5 PEEK, lane": lambda: peek_lane.many([(breaker_keys(s), peek_args()) for s in "abcde"]),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(options.repeats):
        order = list(variants.items())
        for name, run in order if repeat % 2 == 0 else reversed(order):
            for _ in range(200):
                run()
            cpu0 = time.process_time()
            for _ in range(options.n):
                run()
            results[name].append((time.process_time() - cpu0) / options.n * 1e6)
    for name, values in results.items():
        each = ", ".join(f"{value:.0f}" for value in values)
        print(f"{name:32s} median {statistics.median(values):6.1f} µs CPU per call  ({each})")


if __name__ == "__main__":
    main()
