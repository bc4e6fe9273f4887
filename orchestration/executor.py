"""The executor: runs one endpoint of a plan for one client request.

Stages run in order; the calls of one stage run in parallel (``spawn``), each
through its service's client with retries (``resilience.retry``). Every call
sees the request, the user and the results of the calls of earlier stages.

* An optional call that fails puts its ``fallback`` in place; the response is
  then partial (``partialData``/``failedServices``).
* An optional call with ``stale_if_error_s`` that fails puts its last good result
  for the same rendered request in place instead, when one is kept
  (``resilience.stale``); the response lists it in ``staleServices``.
* A required call that fails cancels the calls of its stage still running and
  no later stage starts; the run returns a ``Failure`` holding every required
  failure that had finished, which ``errors.failure_to_error`` ranks.
* The endpoint's ``timeout_ms`` is the deadline of the whole run: attempts and
  backoff never go past it, and when it passes every required call not done
  counts as a timeout (504). Optional calls not done fall back.
* A request whose client is gone (``RequestContext.client_gone``) starts no further
  stage: ``Abandoned`` is raised before it; the calls of a stage under way finish.
* Every request of a stage is rendered before any of them is sent, so a request
  that cannot be made (a path hole whose value is null, empty, ``.`` or ``..``,
  which would call ``/carts/`` for ``/carts/{id}``; a header the wire cannot
  carry) raises ``BadRequest`` (400, naming the call) with nothing of the stage sent.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from orchestration import explain
from orchestration.assembly import mark
from orchestration.call_cache import CallCache
from orchestration.call_sender import CallSender
from orchestration.clock import Clock, Deadline, SystemClock
from orchestration.context import RequestContext
from orchestration.downstream.client import DownstreamClient
from orchestration.downstream.pool import DownstreamPool
from orchestration.downstream.request import RequestSpec
from orchestration.errors import Abandoned, ContractViolation, Failure, RequiredFailure
from orchestration.fanout import (
    DEFAULT_MAX_FAN_OUT,
    FanOut,
    FanOutcome,
    Prepared,
    Refused,
    Skipped,
    prepare_call,
    refused_outcome,
    run_fan_out,
)
from orchestration.observer import AttemptObservation, NullObserver, Observer, ResilienceDecision, SchemaViolation
from orchestration.outcome import Outcome, OutcomeKind, failure_kind, retry_after_whole_s
from orchestration.plan import Call, Endpoint, Plan, RetryPolicy
from orchestration.resilience.hedge import Hedged
from orchestration.resilience.retry import (
    DEADLINE_PASSED,
    AttemptListener,
    DecisionListener,
    Random,
    Sleeper,
    run_with_retry,
)
from orchestration.resilience.stale import StaleResults, stale_key
from orchestration.spawn import Running, Spawner, default_spawner

_OK = OutcomeKind.OK


@dataclass(frozen=True, slots=True)
class Success:
    """The assembled response (a JSON object for object templates)."""

    body: Any
    partial: bool = False
    failed_services: tuple[str, ...] = ()
    stale_services: tuple[str, ...] = ()  # optional calls answered by a kept result (resilience.stale)


@dataclass(slots=True)
class _Run:
    """The state of one run: the template context and what failed so far."""

    endpoint: Endpoint
    request: RequestContext
    deadline: Deadline
    context: dict[str, Any]
    failed_calls: set[str] = field(default_factory=set)
    stale_calls: set[str] = field(default_factory=set)

    def failed_services(self) -> tuple[str, ...]:
        names = (call.service for call in self.endpoint.calls if call.id in self.failed_calls)
        return tuple(dict.fromkeys(names))

    def stale_services(self) -> tuple[str, ...]:
        names = (call.service for call in self.endpoint.calls if call.id in self.stale_calls)
        return tuple(dict.fromkeys(names))


def _stage_requests(run: _Run, stage: tuple[Call, ...], max_fan_out: int) -> tuple[Prepared, ...]:
    """The requests of a stage, all rendered before the first is sent (raises ``BadRequest``);
    ``when`` and ``for_each`` decide how many each call makes (``orchestration.fanout``)."""
    return tuple(prepare_call(call, run.context, run.request, max_fan_out=max_fan_out) for call in stage)


def _decisive(outcome: Outcome) -> bool:
    """A hedge's winner: a success or a 4xx (the service's answer); failures wait for the other."""
    return outcome.ok or (
        outcome.kind is OutcomeKind.BAD_STATUS and outcome.status is not None and outcome.status < 500
    )


@dataclass(frozen=True, slots=True)
class _Step:
    """What sending one call of one endpoint needs beyond its request, made on its first
    request and kept (the plan and the pool are the executor's for its life): a call then
    builds no listeners and no hedge of its own (issue 14: features under 5 % CPU)."""

    client: DownstreamClient
    policy: RetryPolicy
    attempt_timeout_s: float
    decide: DecisionListener
    listen: AttemptListener
    hedged: Hedged | None


class _Cancel:
    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def __call__(self) -> bool:
        return self.cancelled


class Executor:
    def __init__(
        self,
        plan: Plan,
        pool: DownstreamPool,
        *,
        clock: Clock | None = None,
        observer: Observer | None = None,
        spawner: Spawner | None = None,
        sleep: Sleeper | None = None,
        random_unit: Random | None = None,
        call_cache: CallCache | None = None,
        max_fan_out: int = DEFAULT_MAX_FAN_OUT,
        stale_results: StaleResults | None = None,
    ) -> None:
        self.plan = plan
        self._pool = pool
        self._clock: Clock = clock or SystemClock()
        self._observer: Observer = observer or NullObserver()
        self._spawner = spawner or default_spawner()
        self._sleep = sleep or self._clock.sleep
        self._random = random_unit or random.random
        self._sender = CallSender(call_cache or CallCache())
        self._max_fan_out = max_fan_out
        self._stale = stale_results or StaleResults(wall=self._clock.wall)
        self._steps: dict[tuple[str, str], _Step] = {}  # (endpoint, call id): see ``_Step``

    def run(self, endpoint: Endpoint, request: RequestContext) -> Success | Failure:
        deadline = Deadline.after(self._clock, endpoint.timeout_ms / 1000)
        run = _Run(endpoint, request, deadline, request.template_context())
        for stage in endpoint.stages:
            if request.client_gone():  # nobody to answer: no further stage is sent
                raise Abandoned()
            specs = _stage_requests(run, stage, self._max_fan_out)
            outcomes = self._run_stage(run, stage, specs)
            self._keep_or_recall_stale(run, stage, specs, outcomes)
            required_failures = self._absorb(run, stage, outcomes)
            if required_failures:
                return Failure(tuple(required_failures), run.failed_services())
        failed, stale = run.failed_services(), run.stale_services()
        rendered = endpoint.response.render(run.context)
        self._hold_to_contract(endpoint, rendered)
        body = mark(rendered, failed_services=failed, stale_services=stale)
        return Success(body, bool(failed), failed, stale)

    def _hold_to_contract(self, endpoint: Endpoint, rendered: Any) -> None:
        """The rendered ``response`` (before the gateway's markers) against ``response_schema``."""
        if endpoint.response_contract is None:
            return
        violation = endpoint.response_contract.violation(rendered)
        if violation is None:
            return
        fail = endpoint.on_schema_violation == "fail"
        self._observer.on_schema_violation(SchemaViolation(endpoint.name, violation.field, violation.message, fail))
        if fail:
            raise ContractViolation()

    def _keep_or_recall_stale(
        self, run: _Run, stage: tuple[Call, ...], specs: tuple[Prepared, ...], outcomes: dict[str, Outcome]
    ) -> None:
        """Optional calls with ``stale_if_error_s``: keep a good result, or put the last
        kept one for the same rendered request in place of a failure (not a fallback)."""
        for call, spec in zip(stage, specs, strict=True):
            max_age_s = call.stale_if_error_s
            outcome = outcomes.get(call.id)
            if max_age_s is None or call.required or outcome is None or not isinstance(spec, RequestSpec):
                continue  # a skipped or fanned-out call keeps no single result to stand in
            forwards = self.plan.services[call.service].auth.type == "bearer_forward"
            if outcome.kind is _OK:
                self._stale.keep_result(run.endpoint.name, call.id, spec, outcome.body, forwards, max_age_s)
                continue
            key = stale_key(run.endpoint.name, call.id, spec, forwards_authorization=forwards)
            kept = self._stale.recall(key, max_age_s=max_age_s)
            if kept is None:
                continue
            outcomes[call.id] = Outcome(OutcomeKind.OK, status=outcome.status, body=kept.body)
            run.stale_calls.add(call.id)
            detail = f"{call.service} failed ({outcome.kind}); its result of {kept.age_s:.0f}s ago served"
            self._decide(run.endpoint.name, call, "stale_served", detail)

    def _run_stage(self, run: _Run, stage: tuple[Call, ...], specs: tuple[Prepared, ...]) -> dict[str, Outcome]:
        if run.deadline.expired:
            return {call.id: DEADLINE_PASSED for call in stage}
        cancel = _Cancel()
        tasks = [partial(self._call, run, call, spec, cancel) for call, spec in zip(stage, specs, strict=True)]
        if len(tasks) == 1:  # nothing to run beside it: stay in this greenlet
            return {stage[0].id: tasks[0]()}
        running = self._spawner.start(tasks)
        outcomes: dict[str, Outcome] = {}
        try:
            while len(outcomes) < len(stage):
                done = running.next_done(run.deadline.remaining())
                if done is None:
                    break  # the deadline passed with calls still running
                if self._take(done, stage, outcomes):
                    self._take_finished(running, stage, outcomes)
                    return outcomes
        finally:
            cancel.cancelled = True
            if len(outcomes) < len(stage):
                running.cancel()
        return {call.id: outcomes.get(call.id, DEADLINE_PASSED) for call in stage}

    @staticmethod
    def _take(done: tuple[int, Outcome | Exception], stage: tuple[Call, ...], outcomes: dict[str, Outcome]) -> bool:
        """Store a finished call; True when it is a required failure."""
        index, result = done
        if isinstance(result, Exception):
            raise result
        call = stage[index]
        outcomes[call.id] = result
        return call.required and not result.ok

    def _take_finished(self, running: Running[Outcome], stage: tuple[Call, ...], outcomes: dict[str, Outcome]) -> None:
        """Keep calls that finished together with a required failure (precedence
        ranks them all); calls still running are cancelled."""
        while len(outcomes) < len(stage) and (done := running.next_done(0.0)) is not None:
            self._take(done, stage, outcomes)

    def _call(self, run: _Run, call: Call, prepared: Prepared, cancelled: Callable[[], bool]) -> Outcome:
        if isinstance(prepared, RequestSpec):
            return self._send(run, call, prepared, run.context, cancelled)
        if isinstance(prepared, Skipped):  # no request; neither success nor failure
            explain.note_skipped(call.id)
            return FanOutcome(OutcomeKind.OK, body=copy.deepcopy(call.fallback))
        if isinstance(prepared, Refused):
            refused = refused_outcome(call, prepared)
            explain.note(call.id, "refused", refused)
            return refused
        return self._fan_out(run, call, prepared, cancelled)

    def _fan_out(self, run: _Run, call: Call, fan: FanOut, cancelled: Callable[[], bool]) -> Outcome:
        explain.note_elements(call.id, len(fan.elements))

        def send(spec: RequestSpec, scope: Mapping[str, Any], stop: Callable[[], bool]) -> Outcome:
            with explain.element(scope["index"]):  # explain: one waterfall row per element
                return self._send(run, call, spec, scope, stop)

        return run_fan_out(
            fan, send, required=call.required, spawner=self._spawner, deadline=run.deadline, cancelled=cancelled
        )

    def _send(
        self, run: _Run, call: Call, spec: RequestSpec, context: Mapping[str, Any], cancelled: Callable[[], bool]
    ) -> Outcome:
        service = self.plan.services[call.service]
        fetch = partial(self._attempts, run, call, spec, cancelled)
        return self._sender.send(service, call, spec, context, run.deadline, fetch)

    def _attempts(self, run: _Run, call: Call, spec: RequestSpec, cancelled: Callable[[], bool]) -> Outcome:
        step = self._steps.get((run.endpoint.name, call.id))
        if step is None:
            step = self._steps[(run.endpoint.name, call.id)] = self._step(run.endpoint, call)
        grant = step.client.retry_grant()  # counts the call toward the retry budget
        attempt = partial(step.hedged, spec) if step.hedged is not None else partial(step.client.attempt, spec)
        return run_with_retry(
            attempt,
            policy=step.policy,
            retryable_method=call.retryable_method,
            attempt_timeout_s=step.attempt_timeout_s,
            deadline=run.deadline,
            sleep=self._sleep,
            random=self._random,
            cancelled=cancelled,
            listener=step.listen,
            grant=grant,
            on_decision=step.decide,
        )

    def _step(self, endpoint: Endpoint, call: Call) -> _Step:
        service = self.plan.services[call.service]
        client = self._pool.client(call.service)
        timeout_ms = call.timeout_ms if call.timeout_ms is not None else service.timeout_ms
        decide = partial(self._decide, endpoint.name, call)
        hedged = None
        if service.hedge is not None and call.retryable_method:
            hedged = Hedged(
                client.attempt,
                after_s=service.hedge.after_ms / 1000,
                spawner=self._spawner,
                decisive=_decisive,
                grant=client.grant,
                on_decision=decide,
                arms_on_read=client.arms_hedge,
            )
        listen = partial(self._observe, endpoint.name, call)
        return _Step(client, service.retry, timeout_ms / 1000, decide, listen, hedged)

    def _decide(self, endpoint: str, call: Call, decision: str, detail: str) -> None:
        self._observer.on_decision(ResilienceDecision(endpoint, call.service, call.id, decision, detail))

    def _observe(self, endpoint: str, call: Call, number: int, outcome: Outcome) -> None:
        observation = AttemptObservation(
            endpoint, call.service, call.id, number, outcome.kind, outcome.duration_s, outcome.status
        )
        self._observer.on_attempt(observation)

    @staticmethod
    def _absorb(run: _Run, stage: tuple[Call, ...], outcomes: Mapping[str, Outcome]) -> list[RequiredFailure]:
        failures: list[RequiredFailure] = []
        for call in stage:
            outcome = outcomes.get(call.id)
            if outcome is None:
                continue  # cancelled after a required failure
            if outcome.ok:
                run.context[call.id] = outcome.body
                if isinstance(outcome, FanOutcome) and outcome.failed_elements:
                    run.failed_calls.add(call.id)  # optional for_each: failed elements are null
                continue
            run.failed_calls.add(call.id)
            run.context[call.id] = copy.deepcopy(call.fallback)
            if call.required:
                kind, retry_after = failure_kind(outcome), retry_after_whole_s(outcome)
                failures.append(RequiredFailure(call.service, kind, outcome.status, retry_after, outcome.reason))
        return failures
