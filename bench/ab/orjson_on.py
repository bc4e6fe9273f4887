"""A/B for bench/micro.py --ab: B = JSON in C (orchestration.fast_json), A = the standard library."""

import json
from typing import Any

from orchestration import fast_json

_fast = (fast_json.loads, fast_json.dumps)


def _never(raw: bytes) -> Any:
    raise fast_json.NotFast()


def _stdlib_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def toggle(on: bool) -> None:
    fast_json.loads, fast_json.dumps = _fast if on else (_never, _stdlib_dumps)  # type: ignore[assignment]
