"""The outcome of one downstream attempt, as data.

A downstream failure is not an exception: every attempt ends in an ``Outcome``
whose ``kind`` the breaker, the retry policy and the executor read. Only the
executor turns a final outcome into a ``FailureKind`` (``failure_kind``), and
only ``errors.failure_to_error`` turns that into HTTP.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from orchestration.errors import FailureKind


class OutcomeKind(enum.StrEnum):
    OK = "ok"
    BAD_STATUS = "bad_status"  # any non-2xx answer; ``status`` says which
    TIMEOUT = "timeout"  # the attempt (connect to last byte) ran out of time
    CONNECT_ERROR = "connect_error"  # refused, reset, TLS failure, broken stream
    BAD_BODY = "bad_body"  # not JSON, or larger than the body limit
    CIRCUIT_OPEN = "circuit_open"  # the breaker refused; no network touched
    BULKHEAD_FULL = "bulkhead_full"  # too many calls in flight; no network touched
    MISCONFIGURED = "misconfigured"  # e.g. a credential env var is unset; no network touched
    GRAPHQL_ERROR = "graphql_error"  # a GraphQL answer with errors and no data (downstream.graphql)


# Kinds that say the service is unhealthy; 4xx and our own refusals do not.
_BREAKER_FAILURES = frozenset({OutcomeKind.TIMEOUT, OutcomeKind.CONNECT_ERROR, OutcomeKind.BAD_BODY})


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: OutcomeKind
    status: int | None = None
    body: Any = None  # parsed JSON when kind is OK
    retry_after_s: float | None = None  # from a 429's Retry-After
    duration_s: float = 0.0
    detail: str = ""  # for logs only; never shown to clients
    # Said to the client when this outcome fails the request: only for failures the
    # gateway decided itself from an answer's shape (e.g. a for_each that is not a
    # list), never a downstream's own words (those stay in ``detail``).
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is OutcomeKind.OK

    @property
    def is_breaker_failure(self) -> bool:
        """5xx, timeouts, connection errors and unparseable bodies count; 4xx do not."""
        if self.kind is OutcomeKind.BAD_STATUS:
            return self.status is not None and self.status >= 500
        return self.kind in _BREAKER_FAILURES

    @property
    def touched_network(self) -> bool:
        return self.kind not in {OutcomeKind.CIRCUIT_OPEN, OutcomeKind.BULKHEAD_FULL, OutcomeKind.MISCONFIGURED}


def failure_kind(outcome: Outcome) -> FailureKind:
    """How a failed required call's final outcome ranks in the contract's table."""
    if outcome.kind is OutcomeKind.TIMEOUT:
        return FailureKind.TIMEOUT
    if outcome.kind is OutcomeKind.CIRCUIT_OPEN:
        return FailureKind.CIRCUIT_OPEN
    if outcome.kind is not OutcomeKind.BAD_STATUS or outcome.status is None:
        return FailureKind.FAILURE
    status = outcome.status
    if status == 401:
        return FailureKind.UNAUTHORIZED
    if status == 403:
        return FailureKind.FORBIDDEN
    if status == 429:
        return FailureKind.RATE_LIMITED
    if 400 <= status < 500:
        return FailureKind.CLIENT_ERROR
    return FailureKind.FAILURE


def retry_after_whole_s(outcome: Outcome) -> int | None:
    """Retry-After for the client, in whole seconds (never rounded down to 0)."""
    if outcome.retry_after_s is None:
        return None
    return max(1, math.ceil(outcome.retry_after_s))
