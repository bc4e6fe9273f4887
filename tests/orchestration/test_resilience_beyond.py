"""Contract section 7 in the engine: deadline header, Retry-After of 429/503, retry budget."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis

from orchestration.clock import FakeClock
from orchestration.errors import Failure
from orchestration.executor import Success
from orchestration.plan import BreakerPolicy, RetryPolicy
from orchestration.resilience.redis_retry_budget import RedisRetryBudgetStore
from orchestration.resilience.retry_budget import InProcessRetryBudgetStore, RetryBudgetStore
from tests.orchestration.engine_kit import Gateway, call, endpoint, reply, service
from tests.support.redis import redis_or_skip

BudgetFactory = Callable[[], RetryBudgetStore]  # a second call: another worker of the same host


def _answers(clock: FakeClock, *answers: tuple[int, dict[str, str], float]):  # type: ignore[no-untyped-def]
    """Each request takes the next (status, headers, seconds it takes); the last repeats."""
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        status, headers, seconds = queue.pop(0) if len(queue) > 1 else queue[0]
        clock.advance(seconds)
        return httpx.Response(status, json={"status": status}, headers=headers)

    return handle


def _decisions(gateway: Gateway) -> list[str]:
    return [d.decision for d in gateway.recorder.decisions]


def test_each_attempt_carries_the_whole_ms_it_has_left(clock, downstream, request_context):
    downstream.on("inventory", _answers(clock, (500, {}, 0.3), (200, {}, 0.0)))
    policy = RetryPolicy(max_retries=1, backoff="fixed", base_ms=100)
    inventory = service("inventory", timeout_ms=400, retry=policy, deadline_header="X-Request-Deadline-Ms")
    gateway = Gateway([inventory], downstream, clock)
    result = gateway.executor.run(endpoint(call("inventory"), timeout_ms=500), request_context)
    assert isinstance(result, Success)
    sent = [r.headers["X-Request-Deadline-Ms"] for r in downstream.requests_to("inventory")]
    assert sent == ["400", "100"]  # 500 ms total: 300 spent, 100 waited


def test_no_deadline_header_unless_configured(clock, downstream, request_context):
    gateway = Gateway([service("inventory")], downstream, clock)
    gateway.executor.run(endpoint(call("inventory")), request_context)
    assert "x-request-deadline-ms" not in downstream.requests_to("inventory")[0].headers


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_of_429_and_503_is_waited(clock, downstream, request_context, status):
    downstream.on("inventory", _answers(clock, (status, {"Retry-After": "1"}, 0.0), (200, {}, 0.0)))
    policy = RetryPolicy(max_retries=2, base_ms=100, retry_on=frozenset({"5xx", "429"}))
    gateway = Gateway([service("inventory", retry=policy)], downstream, clock)
    result = gateway.executor.run(endpoint(call("inventory"), timeout_ms=3000), request_context)
    assert isinstance(result, Success)
    assert clock.sleeps == [1.0]
    assert downstream.hits["inventory"] == 2
    assert _decisions(gateway) == ["retry_after_waited"]


def test_retry_after_past_the_deadline_is_not_retried(clock, downstream, request_context):
    downstream.on("inventory", _answers(clock, (503, {"Retry-After": "5"}, 0.0)))
    policy = RetryPolicy(max_retries=2, base_ms=100, retry_on=frozenset({"5xx"}))
    gateway = Gateway([service("inventory", retry=policy)], downstream, clock)
    result = gateway.executor.run(endpoint(call("inventory"), timeout_ms=2000), request_context)
    assert isinstance(result, Failure)
    assert downstream.hits["inventory"] == 1
    assert clock.sleeps == []
    assert _decisions(gateway) == ["retry_after_past_deadline"]


def test_a_short_retry_after_does_not_shorten_the_backoff(clock, downstream, request_context):
    downstream.on("inventory", _answers(clock, (503, {"Retry-After": "0"}, 0.0), (200, {}, 0.0)))
    policy = RetryPolicy(max_retries=1, base_ms=100)
    gateway = Gateway([service("inventory", retry=policy)], downstream, clock)
    assert isinstance(gateway.executor.run(endpoint(call("inventory")), request_context), Success)
    assert clock.sleeps == [0.1]
    assert _decisions(gateway) == []


def _redis() -> redis.Redis:
    client = redis_or_skip()
    return client


@pytest.fixture(params=["in_process", "redis"])
def budgets(request: pytest.FixtureRequest) -> Iterator[BudgetFactory]:
    if request.param == "in_process":
        shared = InProcessRetryBudgetStore()
        yield lambda: shared
        return
    client = _redis()
    prefix = f"test:{uuid.uuid4().hex}:"
    yield lambda: RedisRetryBudgetStore(client, scope="host-a", prefix=prefix)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _failing_load(gateway: Gateway, clock: FakeClock, request_context, requests: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(requests):
        gateway.executor.run(endpoint(call("inventory")), request_context)
        clock.advance(0.05)  # 20 requests a second


NEVER_OPENS = BreakerPolicy(failure_threshold=1_000_000)
BUDGET = RetryPolicy(max_retries=2, backoff="none", budget_percent=20, budget_min_per_s=1)


def test_without_a_budget_a_failing_service_gets_1_plus_max_retries_times_the_calls(clock, downstream, request_context):
    downstream.on("inventory", reply(503))
    plain = service("inventory", retry=RetryPolicy(max_retries=2, backoff="none"), breaker=NEVER_OPENS)
    gateway = Gateway([plain], downstream, clock)
    _failing_load(gateway, clock, request_context, 400)
    assert downstream.hits["inventory"] == 3 * 400


def test_the_budget_holds_a_failing_service_to_1_plus_budget_times_the_calls(
    clock, downstream, request_context, budgets
):
    downstream.on("inventory", reply(503))
    gateway = Gateway([service("inventory", retry=BUDGET, breaker=NEVER_OPENS)], downstream, clock, budgets=budgets())
    _failing_load(gateway, clock, request_context, 400)  # 20 s of load: two full windows
    retries = downstream.hits["inventory"] - 400
    assert 0 < retries <= 0.2 * 400 + 10  # 20 % of the calls, plus the first window's minimum of 1/s
    over = _decisions(gateway)
    assert set(over) == {"retry_over_budget"}
    assert len(over) >= 400 - retries  # every call short of its 2 retries was refused once


def test_a_quiet_service_may_still_retry_within_the_minimum(clock, downstream, request_context, budgets):
    downstream.on("inventory", reply(503))
    gateway = Gateway([service("inventory", retry=BUDGET, breaker=NEVER_OPENS)], downstream, clock, budgets=budgets())
    gateway.executor.run(endpoint(call("inventory")), request_context)
    assert downstream.hits["inventory"] == 3  # 20 % of one call is 0.2; the minimum allows 10 in 10 s


def test_workers_of_a_host_share_one_budget(clock, downstream, request_context, budgets):
    policy = RetryPolicy(max_retries=1, backoff="none", budget_percent=10, budget_min_per_s=0)
    first = Gateway([service("inventory", retry=policy, breaker=NEVER_OPENS)], downstream, clock, budgets=budgets())
    second = Gateway([service("inventory", retry=policy, breaker=NEVER_OPENS)], downstream, clock, budgets=budgets())
    for _ in range(90):  # the first worker's calls, while the service is healthy
        first.executor.run(endpoint(call("inventory")), request_context)
        clock.advance(0.05)
    downstream.on("inventory", reply(503))
    for _ in range(10):
        second.executor.run(endpoint(call("inventory")), request_context)
        clock.advance(0.05)
    retries = downstream.hits["inventory"] - 100
    # 10 % of the host's 100 calls (less the first worker's last calls not yet sent to
    # Redis); a budget of its own would give the second worker 10 % of its 10 calls: 1
    assert 9 <= retries <= 10


def test_a_budget_never_retried_keeps_only_its_window_of_call_counts() -> None:
    """Calls are counted per second; a service that never retries (the usual case) must
    not keep a bucket for every second it was ever called in (memory grew for ever)."""
    from orchestration.resilience.retry_budget import WINDOW_S

    store = InProcessRetryBudgetStore()
    for second in range(1000, 1100):
        store.on_call("cart", second + 0.5)
    assert len(store._services["cart"].calls) <= WINDOW_S + 1
    granted = store.try_retry("cart", RetryPolicy(max_retries=1, budget_percent=20, budget_min_per_s=0), 1099.5)
    assert granted  # the window's 10 calls still earn 2 retries
