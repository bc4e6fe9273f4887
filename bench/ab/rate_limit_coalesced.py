"""A/B for bench/micro.py --ab --redis (issue 17): B = the rate limit's script runs of one
gevent loop iteration sent as one pipelined write and read (``LaneScript.shared``), A = a
round trip per run (``LaneScript.__call__``), as before.

With ``COALESCE_COUNT=1`` in the child's environment (``--env COALESCE_COUNT=1``) the lane's
writes of the rate-limit script and the runs they carried are counted per variant and
printed at exit (other scripts on the lane, the breaker's and the retry budget's, not)."""

import atexit
import hashlib
import os
import sys
from typing import Any

from orchestration import redis_lane
from orchestration.edge.redis_rate_store import ACQUIRE

_shared = redis_lane.LaneScript.shared
_state = {"on": False}
_counts = {True: [0, 0], False: [0, 0]}  # variant -> [writes, replies]


def toggle(on: bool) -> None:
    _state["on"] = on
    redis_lane.LaneScript.shared = _shared if on else redis_lane.LaneScript.__call__  # type: ignore[method-assign]


if os.environ.get("COALESCE_COUNT"):
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
        for on, (writes, replies) in _counts.items():
            if writes:
                name = "B (coalesced)" if on else "A (a trip each)"
                line = f"rate-limit script, {name}: {writes} writes, {replies} runs, {replies / writes:.2f} a write"
                print(line, file=sys.stderr)
