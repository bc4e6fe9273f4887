"""A/B for bench/micro.py --ab (with --redis): B = the hot path's scripts on
``orchestration.redis_lane`` (our socket pool, RESP by hand, hiredis), A = the same
scripts through redis-py (its ``Script`` object, a pipeline for a batch), as before."""

from typing import Any

from orchestration import redis_lane

_lane = (redis_lane.LaneScript.__call__, redis_lane.LaneScript.many)


def _py_call(self: Any, keys: Any = (), args: Any = ()) -> Any:
    return self._py(keys, args)


def _py_many(self: Any, calls: Any) -> list[Any]:
    return self._py.many(calls)  # type: ignore[no-any-return]


def toggle(on: bool) -> None:
    redis_lane.LaneScript.__call__, redis_lane.LaneScript.many = _lane if on else (_py_call, _py_many)  # type: ignore[method-assign]
