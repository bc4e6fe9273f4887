"""A/B for bench/micro.py --ab --redis (issue 17): B = the rate limit's script runs of one
gevent loop iteration sent as one pipelined write and read (``LaneScript.shared``), A = a
round trip per run (``LaneScript.__call__``), as before.

With ``COALESCE_COUNT=1`` in the child's environment (``--env COALESCE_COUNT=1``), per
variant: the lane's writes of the rate-limit script and the runs they carried (other
scripts on the lane, the breaker's and the retry budget's, not counted), and the CPU the
Redis server spent meanwhile (``/proc/<pid>/schedstat`` of a local ``redis-server``, read
at each toggle: a Redis of the benchmark's own, nothing else using it), printed at exit.
The 50 warm-up requests before the first toggle count as A's runs (not its Redis CPU).
``COALESCE_AA=1`` makes B the same as A: the A/A of these counts beside the A/B."""

import atexit
import hashlib
import os
import sys
from typing import Any

from orchestration import redis_lane
from orchestration.edge.redis_rate_store import ACQUIRE

_shared = redis_lane.LaneScript.shared
_state: dict[str, Any] = {"on": False, "since": None}
_counts = {True: [0, 0, 0], False: [0, 0, 0]}  # variant -> [writes, runs, Redis CPU ns]


def toggle(on: bool) -> None:
    if _redis_pid:
        now = _redis_cpu_ns()
        if _state["since"] is not None:
            _counts[_state["on"]][2] += now - _state["since"]
        _state["since"] = now
    _state["on"] = on
    coalesced = on and not os.environ.get("COALESCE_AA")
    redis_lane.LaneScript.shared = _shared if coalesced else redis_lane.LaneScript.__call__  # type: ignore[method-assign]


def _redis_cpu_ns() -> int:
    with open(f"/proc/{_redis_pid}/schedstat") as stat:
        return int(stat.read().split()[0])


_redis_pid = 0
if os.environ.get("COALESCE_COUNT"):
    import redis

    _redis_pid = int(redis.Redis.from_url(os.environ["REDIS_URL"]).info("server")["process_id"])
    if not os.path.exists(f"/proc/{_redis_pid}/schedstat"):
        _redis_pid = 0  # not on this host
    _once = redis_lane.Lane._once
    _sha = hashlib.sha1(ACQUIRE.encode()).hexdigest().encode()

    def _counting(self: Any, packed: bytes, replies: int) -> list[Any]:
        if _sha in packed[:64]:
            counts = _counts[_state["on"]]
            counts[0] += 1
            counts[1] += replies
        return _once(self, packed, replies)

    redis_lane.Lane._once = _counting  # type: ignore[method-assign]

    @atexit.register
    def _report() -> None:
        for on, (writes, runs, redis_ns) in _counts.items():
            if writes:
                name = ("B (as A)" if os.environ.get("COALESCE_AA") else "B (coalesced)") if on else "A (a trip each)"
                line = f"rate-limit script, {name}: {writes} writes, {runs} runs, {runs / writes:.2f} a write"
                if redis_ns:
                    line += f"; Redis CPU {redis_ns / 1e6:.0f} ms"
                print(line, file=sys.stderr)
