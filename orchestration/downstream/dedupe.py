"""In-flight dedupe: identical requests to one service, in flight at once, are sent once.

For a service with ``dedupe: true``, a GET (or a call marked ``idempotent``)
whose request is the same as one already in flight in this process — same
method, URL, query, headers, body and forwarded credentials — does not go
out: it waits for the first one and shares its final outcome, success or
failure (a failure is not retried a second time by the followers). The first
request runs with its own retries and its own deadline; a follower waits at
most its own remaining deadline and then times out. When the first request is
cancelled (its client's run was abandoned) the waiting followers make the
request themselves. Under gevent the ``threading`` primitives are greenlet-aware.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestration.downstream.request import RequestSpec
from orchestration.outcome import Outcome, OutcomeKind


def dedupe_key(service: str, spec: RequestSpec) -> str:
    """The request as sent (its X-Request-ID aside, which differs per client request)."""
    material = [
        service,
        spec.method,
        spec.path,
        list(spec.params),
        sorted(spec.headers),
        spec.json_body if spec.has_body else "<no body>",
        spec.client_authorization,
    ]
    return hashlib.sha256(json.dumps(material, separators=(",", ":"), default=str).encode()).hexdigest()


@dataclass(slots=True)
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None  # None when the leader never finished (cancelled)


class InFlightRequests:
    def __init__(self) -> None:
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    def do(self, key: str, send: Callable[[], Outcome], *, wait_s: float) -> tuple[Outcome, bool]:
        """``send()``'s outcome, or the one in flight for ``key``; and whether it was shared."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            if not flight.done.wait(max(0.0, wait_s)):
                return Outcome(OutcomeKind.TIMEOUT, detail="identical request in flight did not finish in time"), True
            if flight.outcome is not None:
                return flight.outcome, True
            return self.do(key, send, wait_s=wait_s)  # the leader was cancelled: one of us goes
        try:
            flight.outcome = send()
            return flight.outcome, False
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def in_flight(self) -> int:
        with self._lock:
            return len(self._flights)
