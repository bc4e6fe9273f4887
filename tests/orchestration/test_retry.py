"""Retry: counts, backoff shapes and bounds, idempotency, the deadline."""

from __future__ import annotations

import httpx
import pytest

from orchestration.clock import Deadline, FakeClock
from orchestration.errors import Failure
from orchestration.executor import Success
from orchestration.outcome import Outcome, OutcomeKind
from orchestration.plan import RetryPolicy
from orchestration.resilience.retry import backoff_s, run_with_retry
from tests.orchestration.engine_kit import Gateway, call, endpoint, reply, service


def _flaky(*statuses: int):  # type: ignore[no-untyped-def]
    answers = list(statuses)

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answers.pop(0) if len(answers) > 1 else answers[0], json={"n": len(answers)})

    return handle


def _policy(**overrides) -> RetryPolicy:  # type: ignore[no-untyped-def]
    defaults = {"max_retries": 2, "backoff": "exponential", "base_ms": 100, "retry_on": frozenset({"5xx", "timeout"})}
    return RetryPolicy(**{**defaults, **overrides})


def test_retries_until_success_with_exponential_backoff(clock: FakeClock, downstream, request_context):
    downstream.on("cart", _flaky(500, 503, 200))
    gateway = Gateway([service("cart", retry=_policy())], downstream, clock)
    result = gateway.executor.run(endpoint(call("cart")), request_context)
    assert isinstance(result, Success)
    assert downstream.hits["cart"] == 3
    assert clock.sleeps == pytest.approx([0.1, 0.2])
    assert [a.attempt for a in gateway.recorder.attempts] == [1, 2, 3]


def test_gives_up_after_max_retries(clock: FakeClock, downstream, request_context):
    downstream.on("cart", reply(500))
    gateway = Gateway([service("cart", retry=_policy(max_retries=3))], downstream, clock)
    assert isinstance(gateway.executor.run(endpoint(call("cart")), request_context), Failure)
    assert downstream.hits["cart"] == 4
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [("exponential", [0.1, 0.2, 0.4, 0.8]), ("fixed", [0.1, 0.1, 0.1, 0.1]), ("none", [0.0, 0.0, 0.0, 0.0])],
)
def test_backoff_shapes(backoff, expected):
    policy = _policy(backoff=backoff)
    assert [backoff_s(policy, n, lambda: 0.5) for n in (1, 2, 3, 4)] == pytest.approx(expected)


@pytest.mark.parametrize("unit", [0.0, 0.25, 0.999])
def test_full_jitter_stays_within_the_step(unit):
    policy = _policy(jitter=True)
    for number, step in ((1, 0.1), (2, 0.2), (3, 0.4)):
        delay = backoff_s(policy, number, lambda: unit)
        assert 0 <= delay <= step
        assert delay == pytest.approx(unit * step)


def test_only_kinds_listed_in_retry_on_are_retried(clock, downstream, request_context):
    downstream.on("cart", reply(502))
    gateway = Gateway([service("cart", retry=_policy(retry_on=frozenset({"timeout"})))], downstream, clock)
    gateway.executor.run(endpoint(call("cart")), request_context)
    assert downstream.hits["cart"] == 1


@pytest.mark.parametrize("status", [400, 404, 409])
def test_4xx_is_never_retried(status, clock, downstream, request_context):
    downstream.on("cart", reply(status))
    policy = _policy(retry_on=frozenset({"5xx", "timeout", "connect_error", "429"}))
    Gateway([service("cart", retry=policy)], downstream, clock).executor.run(endpoint(call("cart")), request_context)
    assert downstream.hits["cart"] == 1


def test_429_is_retried_when_listed_and_honours_retry_after(clock: FakeClock, downstream, request_context):
    downstream.on("cart", lambda r: httpx.Response(429, headers={"Retry-After": "1"}))
    policy = _policy(max_retries=1, retry_on=frozenset({"429"}))
    gateway = Gateway([service("cart", retry=policy)], downstream, clock)
    gateway.executor.run(endpoint(call("cart"), timeout_ms=5000), request_context)
    assert downstream.hits["cart"] == 2
    assert clock.sleeps == [1.0]


def test_connect_errors_are_retried_when_listed(clock, downstream, request_context):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    downstream.on("cart", refuse)
    policy = _policy(retry_on=frozenset({"connect_error"}))
    Gateway([service("cart", retry=policy)], downstream, clock).executor.run(endpoint(call("cart")), request_context)
    assert downstream.hits["cart"] == 3


@pytest.mark.parametrize(
    ("method", "idempotent", "hits"),
    [
        ("GET", False, 3),
        ("HEAD", False, 3),
        ("PUT", False, 3),
        ("DELETE", False, 3),
        ("OPTIONS", False, 3),
        ("POST", False, 1),
        ("PATCH", False, 1),
        ("POST", True, 3),
        ("PATCH", True, 3),
    ],
)
def test_only_safe_or_idempotent_calls_are_retried(method, idempotent, hits, clock, downstream, request_context):
    downstream.on("cart", reply(503))
    gateway = Gateway([service("cart", retry=_policy())], downstream, clock)
    gateway.executor.run(endpoint(call("cart", method=method, idempotent=idempotent)), request_context)
    assert downstream.hits["cart"] == hits


def test_no_backoff_sleep_runs_past_the_deadline(clock: FakeClock, downstream, request_context):
    downstream.on("cart", reply(500))
    gateway = Gateway([service("cart", retry=_policy(max_retries=5, base_ms=200))], downstream, clock)
    gateway.executor.run(endpoint(call("cart"), timeout_ms=700), request_context)
    # 0.2 + 0.4 = 0.6 fits before 0.7; the next 0.8 step would end after the deadline
    assert clock.sleeps == pytest.approx([0.2, 0.4])
    assert downstream.hits["cart"] == 3


def test_no_attempt_starts_after_the_deadline():
    clock = FakeClock()
    deadline = Deadline.after(clock, 1.0)
    timeouts: list[float] = []

    def attempt(timeout_s: float) -> Outcome:
        timeouts.append(timeout_s)
        clock.advance(timeout_s)
        return Outcome(OutcomeKind.TIMEOUT)

    outcome = run_with_retry(
        attempt,
        policy=_policy(max_retries=5, backoff="none"),
        retryable_method=True,
        attempt_timeout_s=0.4,
        deadline=deadline,
        sleep=clock.sleep,
        random=lambda: 0.0,
    )
    assert outcome.kind is OutcomeKind.TIMEOUT
    assert timeouts == pytest.approx([0.4, 0.4, 0.2])  # the last attempt gets only what is left


def test_a_cancelled_call_makes_no_further_attempt():
    clock = FakeClock()
    attempts: list[float] = []
    cancelled = False

    def attempt(timeout_s: float) -> Outcome:
        nonlocal cancelled
        attempts.append(timeout_s)
        cancelled = True
        return Outcome(OutcomeKind.BAD_STATUS, status=500)

    run_with_retry(
        attempt,
        policy=_policy(),
        retryable_method=True,
        attempt_timeout_s=0.4,
        deadline=Deadline.after(clock, 5),
        sleep=clock.sleep,
        random=lambda: 0.0,
        cancelled=lambda: cancelled,
    )
    assert len(attempts) == 1 and clock.sleeps == []


def test_each_retry_counts_for_the_breaker(clock, downstream, request_context):
    from orchestration.plan import BreakerPolicy

    downstream.on("cart", reply(500))
    cart = service("cart", retry=_policy(max_retries=2), breaker=BreakerPolicy(failure_threshold=3))
    gateway = Gateway([cart], downstream, clock)
    gateway.executor.run(endpoint(call("cart")), request_context)
    assert [(t.from_state, t.to_state) for t in gateway.recorder.transitions] == [("closed", "open")]
