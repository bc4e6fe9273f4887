"""Checks of a service's resilience fields (contract section 7) beyond their shapes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.config.problems import Problem, key_location, quoted

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 field-name
# Headers the gateway writes itself: a deadline there would clash with them.
_RESERVED = frozenset(
    {"host", "content-length", "content-type", "transfer-encoding", "connection", "authorization"}
    | {"x-request-id", "traceparent", "tracestate", "accept", "accept-encoding", "user-agent"}
)


def check_resilience(service: Mapping[str, Any], location: str, out: list[Problem]) -> None:
    header = service.get("deadline_header")
    if isinstance(header, str):
        where = key_location(location, "deadline_header")
        if not _TOKEN.match(header):
            out.append(Problem(where, f"not a valid header name: {quoted(header)}"))
        elif header.lower() in _RESERVED:
            out.append(Problem(where, f"{quoted(header)} is a header the gateway sets itself"))
    breaker = service.get("breaker")
    if isinstance(breaker, Mapping):
        _both_or_neither(breaker, ("min_calls", "failure_rate"), key_location(location, "breaker"), out)
    hedge = service.get("hedge")
    timeout = service.get("timeout_ms", 1000)
    after = hedge.get("after_ms") if isinstance(hedge, Mapping) else None
    if _is_int(after) and _is_int(timeout) and after >= timeout:
        where = key_location(key_location(location, "hedge"), "after_ms")
        out.append(Problem(where, f"must be below the service's timeout_ms ({timeout}), or no hedge is ever sent"))
    retry = service.get("retry")
    if isinstance(retry, Mapping) and retry.get("budget_min_per_s") is not None and retry.get("budget_percent") is None:
        where = key_location(key_location(location, "retry"), "budget_min_per_s")
        out.append(Problem(where, "only used with 'budget_percent'"))


def _both_or_neither(section: Mapping[str, Any], keys: tuple[str, str], location: str, out: list[Problem]) -> None:
    first, second = (section.get(key) is not None for key in keys)
    if first != second:
        missing = keys[1] if first else keys[0]
        out.append(Problem(key_location(location, missing), f"required with {quoted(keys[0] if first else keys[1])}"))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
