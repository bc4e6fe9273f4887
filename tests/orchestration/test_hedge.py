"""Contract section 7, ``hedge.after_ms``: a second attempt for a slow GET/idempotent call,
the first decisive answer wins, the loser does not count for the breaker, the retry budget
pays for the hedge. Threads and a real (short) ``after_ms``; no timing is asserted, and none
decides a verdict: the fake replicas tell the hedge from the first attempt by the thread it
runs in (``_HedgeSpawner``), not by which reached them first, and a test waits for the hedge
to have run, not for a fixed time (under CPU load a 20 ms hedge can overtake the first attempt)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpx
import pytest

from orchestration.downstream.transport import ATTEMPT_CANCEL
from orchestration.executor import Success
from orchestration.plan import BreakerPolicy, HedgePolicy, RetryPolicy
from orchestration.resilience.breaker import BreakerState
from orchestration.resilience.breaker_store import BreakerStore, InProcessBreakerStore
from orchestration.resilience.hedge import AttemptCancel
from orchestration.resilience.redis_breaker_store import RedisBreakerStore
from orchestration.spawn import Running, ThreadSpawner
from tests.orchestration.engine_kit import Gateway, call, endpoint, service
from tests.support.redis import redis_or_skip

T = TypeVar("T")

HEDGE = HedgePolicy(after_ms=20)  # who answers what does not hang on it: it only sets how long a test waits
# Where the first attempt must answer before the hedge is due: far above scheduling noise
# (tens of ms on a loaded machine), below the service's 1,000 ms timeout (else no hedge is armed).
HEDGE_IN_TIME = HedgePolicy(after_ms=500)
BLOCK_S = 10.0  # the longest a fake waits for the test (or a hedge) before giving up

_ROLE = threading.local()


def _is_hedge() -> bool:
    return getattr(_ROLE, "hedge", False)


class _HedgeSpawner(ThreadSpawner):
    """``ThreadSpawner`` whose timer task (the hedge: ``Spawner.later``) marks its thread, so a
    fake answers by role; the first attempt runs in the caller's thread. ``hedge_ended`` is
    released each time a hedge task returns (its attempt over, its breaker permit settled)."""

    def __init__(self) -> None:
        self.hedge_ended = threading.Semaphore(0)

    def later(self, delay_s: float, task: Callable[[], T]) -> Running[T]:
        def hedge() -> T:
            _ROLE.hedge = True
            try:
                return task()
            finally:
                self.hedge_ended.release()

        return super().later(delay_s, hedge)

    def wait_for_hedge(self) -> None:
        assert self.hedge_ended.acquire(timeout=BLOCK_S), "the hedge never ran"

    def release_after_hedge(self, release: threading.Event) -> None:
        """Sets ``release`` once the hedge has run (or after ``BLOCK_S``, if it never does)."""

        def wait_then_release() -> None:
            self.hedge_ended.acquire(timeout=BLOCK_S)
            release.set()

        threading.Thread(target=wait_then_release, daemon=True).start()


class _Socket:
    """What the real transport binds to an attempt's cancel token: a shut socket wakes the
    exchange blocked on it (``AttemptCancel``). ``MockTransport`` has none, so the fake binds this."""

    def __init__(self, release: threading.Event) -> None:
        self.shut = False
        self._release = release

    def shutdown(self, _how: int) -> None:
        self.shut = True

    def wait(self, seconds: float) -> None:
        for _ in range(int(seconds / 0.005)):
            if self.shut or self._release.wait(0.005):
                return


Answer = tuple[int, dict[str, object]] | None


class _Replicas:
    """The first attempt gets ``first``, the hedge ``hedge``. A ``None`` answer blocks until
    the test releases it or the attempt is cancelled (its socket shut: a read error, as on a
    real connection)."""

    def __init__(self, first: Answer, hedge: Answer, slow_status: int = 200) -> None:
        self.first = first
        self.hedge = hedge
        self.slow_status = slow_status
        self.release = threading.Event()
        self.cut = 0  # blocked attempts whose socket the gateway shut (a hung-up loser)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        answer = self.hedge if _is_hedge() else self.first
        if answer is None:
            sock = _Socket(self.release)
            cancel = request.extensions.get(ATTEMPT_CANCEL)
            if cancel is not None and not cancel.bind(sock):
                raise httpx.ReadError("attempt cancelled before it was sent", request=request)
            sock.wait(BLOCK_S)
            if sock.shut:
                self.cut += 1
                raise httpx.ReadError("connection shut by the gateway", request=request)
            return httpx.Response(self.slow_status, json={"replica": "slow"})
        return httpx.Response(answer[0], json=answer[1])


@pytest.fixture
def replicas() -> Iterator[list[_Replicas]]:
    made: list[_Replicas] = []
    yield made
    for replica in made:
        replica.release.set()


@pytest.fixture
def spawner() -> _HedgeSpawner:
    return _HedgeSpawner()


def _gateway(
    downstream, clock, replicas, spawner, first, hedge, *, slow_status=200, store=None, policy=HEDGE, **policies
):  # type: ignore[no-untyped-def]
    replica = _Replicas(first, hedge, slow_status=slow_status)
    replicas.append(replica)
    downstream.on("inventory", replica)
    services = [service("inventory", hedge=policy, **policies)]
    return Gateway(services, downstream, clock, spawner=spawner, store=store)


@pytest.fixture(params=["in_process", "redis"])
def breaker_store(request: pytest.FixtureRequest) -> Iterator[BreakerStore]:
    """The loser must not count in either store (the Redis one was suspected: bench/README.md)."""
    if request.param == "in_process":
        yield InProcessBreakerStore()
        return
    client = redis_or_skip()
    prefix = f"test:{uuid.uuid4().hex}:"
    yield RedisBreakerStore(client, prefix=prefix)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _decisions(gateway: Gateway) -> list[str]:
    return [d.decision for d in gateway.recorder.decisions]


FAST = (200, {"replica": "fast"})


def test_a_slow_first_attempt_is_hedged_and_the_hedge_wins(clock, downstream, request_context, replicas, spawner):
    gateway = _gateway(downstream, clock, replicas, spawner, None, FAST)
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "fast"}}
    assert downstream.hits["inventory"] == 2
    assert _decisions(gateway) == ["hedge_fired", "hedge_won"]
    assert replicas[0].cut == 1  # the first attempt was hung up on, not waited for
    replicas[0].release.set()  # the loser answers late: it must not reach the breaker as anything
    gateway.pool.breaker("inventory").snapshot()


def test_a_first_answer_in_time_sends_no_hedge(clock, downstream, request_context, replicas, spawner):
    gateway = _gateway(downstream, clock, replicas, spawner, FAST, FAST, policy=HEDGE_IN_TIME)
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and downstream.hits["inventory"] == 1
    assert _decisions(gateway) == []


def test_a_failing_hedge_waits_for_the_first_attempt(clock, downstream, request_context, replicas, spawner):
    gateway = _gateway(downstream, clock, replicas, spawner, None, (503, {"replica": "down"}))
    spawner.release_after_hedge(replicas[0].release)  # the first answers once the hedge has failed
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "slow"}}
    assert downstream.hits["inventory"] == 2 and _decisions(gateway) == ["hedge_fired"]


def test_a_4xx_is_an_answer_and_wins(clock, downstream, request_context, replicas, spawner):
    gateway = _gateway(downstream, clock, replicas, spawner, None, (404, {"missing": True}))
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert not isinstance(result, Success)
    assert _decisions(gateway) == ["hedge_fired", "hedge_won"]


def test_non_idempotent_calls_are_never_hedged(clock, downstream, request_context, replicas, spawner):
    gateway = _gateway(downstream, clock, replicas, spawner, None, FAST)
    # Released at 10 x after_ms: a hedge wrongly sent for the POST would have been out long before.
    threading.Timer(10 * HEDGE.after_ms / 1000, replicas[0].release.set).start()
    result = gateway.executor.run(endpoint(call("inventory", method="POST")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "slow"}}
    assert downstream.hits["inventory"] == 1 and _decisions(gateway) == []


def test_an_idempotent_post_is_hedged(clock, downstream, request_context, replicas, spawner):
    gateway = _gateway(downstream, clock, replicas, spawner, None, FAST)
    result = gateway.executor.run(endpoint(call("inventory", method="POST", idempotent=True)), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "fast"}}
    assert downstream.hits["inventory"] == 2 and _decisions(gateway) == ["hedge_fired", "hedge_won"]


def test_the_hedge_spends_the_retry_budget(clock, downstream, request_context, replicas, spawner):
    spent = RetryPolicy(max_retries=1, budget_percent=0, budget_min_per_s=0)
    gateway = _gateway(downstream, clock, replicas, spawner, None, FAST, retry=spent)
    spawner.release_after_hedge(replicas[0].release)  # the first answers once the hedge was refused
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "slow"}}
    assert downstream.hits["inventory"] == 1
    assert _decisions(gateway) == ["hedge_over_budget"]


ONE_FAILURE_OPENS = BreakerPolicy(failure_threshold=1, window_s=60, open_s=60, half_open_probes=1)


def test_the_cancelled_loser_is_no_breaker_failure(
    clock, downstream, request_context, replicas, spawner, breaker_store
):
    """The loser's late failure (what a cut connection looks like) is discarded and its
    permit released: a breaker that opens on one failure stays closed."""
    gateway = _gateway(
        downstream,
        clock,
        replicas,
        spawner,
        None,
        FAST,
        slow_status=500,
        breaker=ONE_FAILURE_OPENS,
        store=breaker_store,
    )
    assert isinstance(gateway.executor.run(endpoint(call("inventory")), request_context), Success)
    replicas[0].release.set()  # the loser (the first attempt, in this thread) was cut before this
    spawner.wait_for_hedge()  # the winner's task has returned too: both attempts are settled
    breaker = gateway.pool.breaker("inventory")
    assert breaker.snapshot().state is BreakerState.CLOSED and breaker.snapshot().failures_in_window == 0
    replicas[0].first = FAST  # the next request's first attempt answers: the breaker lets it through
    assert isinstance(gateway.executor.run(endpoint(call("inventory")), request_context), Success)
    assert breaker.acquire().allowed


def test_a_cancelled_hedge_is_no_breaker_failure(clock, downstream, request_context, spawner, breaker_store):
    """The other way round: the first attempt answers after the hedge went out, the hedge
    (which would have failed) is hung up on and does not count either."""
    hedge_in_flight = threading.Event()

    def answer(request: httpx.Request) -> httpx.Response:
        if not _is_hedge():
            assert hedge_in_flight.wait(BLOCK_S)  # the first attempt: answers once the hedge is out
            return httpx.Response(200, json={"replica": "first"})
        sock = _Socket(threading.Event())
        cancel = request.extensions.get(ATTEMPT_CANCEL)
        if cancel is not None and not cancel.bind(sock):
            raise httpx.ReadError("attempt cancelled before it was sent", request=request)
        hedge_in_flight.set()  # its socket is bound: the first attempt's win will shut it
        sock.wait(BLOCK_S)
        if sock.shut:
            raise httpx.ReadError("connection shut by the gateway", request=request)
        return httpx.Response(500, json={"replica": "hedge"})

    downstream.on("inventory", answer)
    services = [service("inventory", hedge=HEDGE, breaker=ONE_FAILURE_OPENS)]
    gateway = Gateway(services, downstream, clock, spawner=spawner, store=breaker_store)
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "first"}}
    assert downstream.hits["inventory"] == 2 and _decisions(gateway) == ["hedge_fired"]
    spawner.wait_for_hedge()  # the hedge's thread has ended its (cut) attempt
    breaker = gateway.pool.breaker("inventory")
    assert breaker.snapshot().state is BreakerState.CLOSED and breaker.snapshot().failures_in_window == 0


def test_a_cancel_token_shuts_the_bound_socket_and_refuses_later_binds():
    import socket

    left, right = socket.socketpair()
    token = AttemptCancel()
    assert token.bind(left)
    token.cancel()
    assert left.recv(1) == b""  # shut down: a blocked reader would wake with EOF
    late = AttemptCancel()
    late.cancel()
    assert not late.bind(right)
    left.close()
    right.close()
