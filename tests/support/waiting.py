"""Polling for what a real server does in its own time (a log line, a purge, a hit)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def eventually(
    found: Callable[[], Any],
    what: str,
    timeout_s: float = 10.0,
    *,
    poll_s: float = 0.05,
    detail: Callable[[], str] = str,
) -> Any:
    """``found()``'s first truthy value within ``timeout_s``; otherwise an AssertionError naming
    ``what``, followed by ``detail()`` (a log tail, say)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"not seen within {timeout_s} s: {what}\n{detail()}")
