"""Builders and a fake downstream for engine tests (no Django, no database)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from orchestration.clock import FakeClock
from orchestration.downstream import DownstreamPool
from orchestration.executor import Executor
from orchestration.observer import (
    AttemptObservation,
    BreakerTransition,
    NullObserver,
    ResilienceDecision,
    SchemaViolation,
)
from orchestration.plan import Call, Endpoint, Layer, Plan, Service
from orchestration.resilience.breaker_store import BreakerStore
from orchestration.resilience.retry_budget import RetryBudgetStore
from orchestration.resilience.stale import StaleResults
from orchestration.spawn import Spawner, ThreadSpawner
from orchestration.templates import compile_path_template, compile_template

Handler = Callable[[httpx.Request], httpx.Response]
_NO_BODY = object()


def service(name: str, **policies: Any) -> Service:
    return Service(name=name, base_url=f"http://{name}.test", **policies)


def call(
    id: str,
    service: str | None = None,
    *,
    stage: int = 1,
    method: str = "GET",
    path: str | None = None,
    query: Mapping[str, Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    body: Any = _NO_BODY,
    **options: Any,
) -> Call:
    return Call(
        id=id,
        service=service or id,
        stage=stage,
        method=method,
        path=compile_path_template(path or f"/{id}"),
        query=tuple((k, compile_template(v)) for k, v in (query or {}).items()),
        headers=tuple((k, compile_template(v)) for k, v in (headers or {}).items()),
        body=None if body is _NO_BODY else compile_template(body),
        **options,
    )


def endpoint(*calls: Call, response: Any = None, timeout_ms: int = 2000, method: str = "GET") -> Endpoint:
    if response is None:
        response = {c.id: "{{ " + c.id + " }}" for c in calls}
    return Endpoint(
        name="test-endpoint",
        method=method,
        path="/test",
        calls=calls,
        response=compile_template(response),
        timeout_ms=timeout_ms,
    )


def plan(services: list[Service], *endpoints: Endpoint) -> Plan:
    return Plan(
        version="test",
        layer=Layer(name="Test", base_path="/v1"),
        services={s.name: s for s in services},
        endpoints=endpoints,
    )


def reply(status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None) -> Handler:
    content = b"" if body is None else json.dumps(body).encode()

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=content, headers=dict(headers or {}))

    return handle


def slow_reply(clock: FakeClock, seconds: float) -> Handler:
    """Answers 200 ``{}`` after ``seconds`` of fake time have passed on ``clock``."""

    def handle(request: httpx.Request) -> httpx.Response:
        clock.advance(seconds)
        return httpx.Response(200, json={})

    return handle


class StuckReply:
    """Answers 200 ``{}`` only once ``release`` is set (or after 2 s), noting in ``answered``
    that it did: a call still running while the test looks."""

    def __init__(self) -> None:
        self.release, self.answered = threading.Event(), threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.release.wait(2)
        self.answered.set()
        return httpx.Response(200, json={})


class FakeDownstream:
    """Every service's MockTransport: routes by service (the URL host), counts hits."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[httpx.Request] = []
        self._lock = threading.Lock()

    def on(self, service: str, handler: Handler) -> None:
        self.routes[service] = handler

    def handle(self, request: httpx.Request) -> httpx.Response:
        name = request.url.host.split(".")[0]
        with self._lock:
            self.hits[name] += 1
            self.requests.append(request)
        return self.routes.get(name, reply(200, {"service": name}))(request)

    def transport_for(self, _service: Service) -> httpx.BaseTransport:
        return httpx.MockTransport(self.handle)

    def requests_to(self, service: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host.split(".")[0] == service]


class Recorder(NullObserver):
    def __init__(self) -> None:
        self.attempts: list[AttemptObservation] = []
        self.transitions: list[BreakerTransition] = []
        self.store_errors: list[tuple[str, Exception]] = []
        self.decisions: list[ResilienceDecision] = []
        self.schema_violations: list[SchemaViolation] = []

    def on_attempt(self, observation: AttemptObservation) -> None:
        self.attempts.append(observation)

    def on_breaker_transition(self, transition: BreakerTransition) -> None:
        self.transitions.append(transition)

    def on_store_error(self, store: str, error: Exception) -> None:
        self.store_errors.append((store, error))

    def on_decision(self, decision: ResilienceDecision) -> None:
        self.decisions.append(decision)

    def on_schema_violation(self, violation: SchemaViolation) -> None:
        self.schema_violations.append(violation)


class Gateway:
    """An executor over fake downstreams, with a fake clock and a recorder."""

    def __init__(
        self,
        services: list[Service],
        downstream: FakeDownstream,
        clock: FakeClock,
        *,
        spawner: Spawner | None = None,
        store: BreakerStore | None = None,
        budgets: RetryBudgetStore | None = None,
        random_unit: Callable[[], float] | None = None,
        stale: StaleResults | None = None,
    ) -> None:
        self.recorder = Recorder()
        self.plan = plan(services)
        self.pool = DownstreamPool(
            self.plan.services,
            downstream.transport_for,
            breaker_store=store,
            retry_budget_store=budgets,
            observer=self.recorder,
            clock=clock,
            environ={},
        )
        self.executor = Executor(
            self.plan,
            self.pool,
            clock=clock,
            observer=self.recorder,
            spawner=spawner or ThreadSpawner(),
            random_unit=random_unit,
            stale_results=stale,
        )
