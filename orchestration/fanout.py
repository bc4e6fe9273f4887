"""``when`` and ``for_each``: what a call sends, decided before its stage sends anything.

``prepare_call`` turns a call into one of:

* ``SKIPPED`` — its ``when`` is not truthy (JMESPath truthiness: false, null,
  ``""``, ``[]`` and ``{}`` are false; numbers, 0 included, are true). No
  request is made; the result is the call's fallback (or null), and it counts
  as neither success nor failure: no attempt, no metric, not partial.
* a ``RequestSpec`` — an ordinary call;
* a ``FanOut`` — one request per element of the ``for_each`` list, each
  rendered with ``item`` (the element) and ``index`` (its position) in the
  context, all rendered before the stage sends anything (so a path hole that
  is empty for one element is a 400 with nothing sent, as for any call);
* a ``Refused`` — ``for_each`` gave something that is not a list, or more
  elements than ``GATEWAY_MAX_FAN_OUT``: the call fails without a request.

``run_fan_out`` sends a fan-out's requests with at most ``max_parallel`` in
flight. Every element is one call through ``send`` (retries, breaker,
bulkhead, the deadline, metrics under the call's id: labels stay bounded).
The result is the answers in element order. Required: the first failed
element fails the call (the others still running are cancelled and no new
one starts). Optional: a failed element is null in the list and the call
counts as failed for ``partialData``/``failedServices``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestration.clock import Deadline
from orchestration.context import RequestContext
from orchestration.downstream.request import RequestSpec, build_request
from orchestration.outcome import Outcome, OutcomeKind
from orchestration.plan import Call
from orchestration.resilience.retry import DEADLINE_PASSED
from orchestration.spawn import Spawner

logger = logging.getLogger(__name__)

DEFAULT_MAX_FAN_OUT = 100
Context = Mapping[str, Any]
Cancelled = Callable[[], bool]
# Sends one element's request: (spec, its template context, cancelled) -> outcome.
Send = Callable[[RequestSpec, Context, Cancelled], Outcome]


@dataclass(frozen=True, slots=True)
class Skipped:
    pass


SKIPPED = Skipped()


@dataclass(frozen=True, slots=True)
class Refused:
    detail: str


@dataclass(frozen=True, slots=True)
class FanOut:
    elements: tuple[tuple[RequestSpec, Context], ...]
    max_parallel: int


Prepared = RequestSpec | Skipped | Refused | FanOut


@dataclass(frozen=True, slots=True)
class FanOutcome(Outcome):
    """A fan-out's answers in element order (``body``); ``failed_elements`` of them are null."""

    failed_elements: int = 0


def truthy(value: Any) -> bool:
    """JMESPath truthiness (0 is true, unlike Python's)."""
    if value is None or value is False:
        return False
    return not (isinstance(value, str | list | dict) and len(value) == 0)


def prepare_call(call: Call, context: dict[str, Any], request: RequestContext, *, max_fan_out: int) -> Prepared:
    if call.when is not None and not truthy(call.when.render(context)):
        return SKIPPED
    if call.for_each is None:
        return build_request(call, context, request)
    items = call.for_each.render(context)
    if not isinstance(items, list):
        return Refused(f"for_each gave {_json_type(items)}, not a list")
    if len(items) > max_fan_out:
        return Refused(f"for_each gave {len(items)} elements, over GATEWAY_MAX_FAN_OUT={max_fan_out}")
    elements = []
    for index, item in enumerate(items):
        scope = {**context, "item": item, "index": index}
        elements.append((build_request(call, scope, request), scope))
    return FanOut(tuple(elements), min(call.max_parallel or max_fan_out, max(1, len(items))))


def _json_type(value: Any) -> str:
    """The JSON word for a value's type (the client reads it, not Python's)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else "a number"


def refused_outcome(call: Call, refused: Refused) -> Outcome:
    """A call that cannot be made from what earlier calls answered: a failure of that call,
    whose located reason reaches the client (``errors.failure_to_error``)."""
    reason = f"call '{call.id}': {refused.detail}"
    logger.warning("call %s (%s) failed: %s", call.id, call.service, refused.detail)
    return Outcome(OutcomeKind.BAD_BODY, detail=refused.detail, reason=reason)


class _Stop:
    """Stops a fan-out: the stage cancelled it, or a required element failed."""

    __slots__ = ("_outer", "stopped")

    def __init__(self, outer: Cancelled) -> None:
        self._outer = outer
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped or self._outer()


def run_fan_out(
    fan: FanOut,
    send: Send,
    *,
    required: bool,
    spawner: Spawner,
    deadline: Deadline,
    cancelled: Cancelled,
) -> Outcome:
    count = len(fan.elements)
    results: list[Outcome | None] = [None] * count
    stop = _Stop(cancelled)
    failure: list[Outcome] = []
    positions = itertools.count()
    take = threading.Lock()  # threads share ``positions``; greenlets never switch inside it

    def worker() -> None:
        while not stop():
            with take:
                index = next(positions)
            if index >= count:
                return
            spec, scope = fan.elements[index]
            outcome = send(spec, scope, stop)
            results[index] = outcome
            if required and not outcome.ok:
                failure.append(outcome)
                stop.stopped = True
                return

    workers = min(fan.max_parallel, count)
    if workers <= 1:
        worker()
    elif workers > 1:
        _run_workers(spawner, worker, workers, deadline, stop)
    return _combined(results, failure, required=required)


def _run_workers(spawner: Spawner, worker: Callable[[], None], workers: int, deadline: Deadline, stop: _Stop) -> None:
    running = spawner.start([worker] * workers)
    try:
        for _ in range(workers):
            done = running.next_done(deadline.remaining())
            if done is None:
                return  # the deadline passed: elements not done count as timeouts
            if isinstance(done[1], Exception):
                raise done[1]
            if stop.stopped:
                return  # a required element failed: no need to wait for the rest
    finally:
        stop.stopped = True
        running.cancel()


def _combined(results: list[Outcome | None], failure: list[Outcome], *, required: bool) -> Outcome:
    if required:
        if failure:
            return failure[0]
        if any(result is None or not result.ok for result in results):
            return DEADLINE_PASSED
        return FanOutcome(OutcomeKind.OK, status=200, body=[result.body for result in results if result is not None])
    body = [result.body if result is not None and result.ok else None for result in results]
    failed = sum(1 for result in results if result is None or not result.ok)
    return FanOutcome(OutcomeKind.OK, status=200, body=body, failed_elements=failed)
