"""Contract section 7, ``hedge.after_ms``: a second attempt for a slow GET/idempotent call,
the first decisive answer wins, the loser does not count for the breaker, the retry budget
pays for the hedge. Threads and a real (short) ``after_ms``; no timing is asserted."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest

from orchestration.downstream.transport import ATTEMPT_CANCEL
from orchestration.executor import Success
from orchestration.plan import BreakerPolicy, HedgePolicy, RetryPolicy
from orchestration.resilience.breaker import BreakerState
from orchestration.resilience.breaker_store import BreakerStore, InProcessBreakerStore
from orchestration.resilience.hedge import AttemptCancel
from orchestration.resilience.redis_breaker_store import RedisBreakerStore
from orchestration.spawn import ThreadSpawner
from tests.orchestration.engine_kit import Gateway, call, endpoint, service
from tests.support.redis import redis_or_skip

HEDGE = HedgePolicy(after_ms=20)


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


class _Replicas:
    """Request n gets ``answers[n]``; a ``None`` answer blocks until the test releases it or
    the attempt is cancelled (its socket shut: a read error, as on a real connection)."""

    def __init__(self, *answers: tuple[int, dict[str, object]] | None, slow_status: int = 200) -> None:
        self.answers = list(answers)
        self.slow_status = slow_status
        self.count = 0
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            index, self.count = self.count, self.count + 1
        answer = self.answers[min(index, len(self.answers) - 1)]
        if answer is None:
            sock = _Socket(self.release)
            cancel = request.extensions.get(ATTEMPT_CANCEL)
            if cancel is not None and not cancel.bind(sock):
                raise httpx.ReadError("attempt cancelled before it was sent", request=request)
            sock.wait(5)
            if sock.shut:
                raise httpx.ReadError("connection shut by the gateway", request=request)
            return httpx.Response(self.slow_status, json={"replica": "slow"})
        return httpx.Response(answer[0], json=answer[1])


@pytest.fixture
def replicas() -> Iterator[list[_Replicas]]:
    made: list[_Replicas] = []
    yield made
    for replica in made:
        replica.release.set()


def _gateway(downstream, clock, replicas, *answers, slow_status=200, store=None, **policies):  # type: ignore[no-untyped-def]
    replica = _Replicas(*answers, slow_status=slow_status)
    replicas.append(replica)
    downstream.on("inventory", replica)
    services = [service("inventory", hedge=HEDGE, **policies)]
    return Gateway(services, downstream, clock, spawner=ThreadSpawner(), store=store)


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


def test_a_slow_first_attempt_is_hedged_and_the_hedge_wins(clock, downstream, request_context, replicas):
    gateway = _gateway(downstream, clock, replicas, None, (200, {"replica": "fast"}))
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "fast"}}
    assert downstream.hits["inventory"] == 2
    assert _decisions(gateway) == ["hedge_fired", "hedge_won"]
    replicas[0].release.set()  # the loser answers late: it must not reach the breaker as anything
    gateway.pool.breaker("inventory").snapshot()


def test_a_first_answer_in_time_sends_no_hedge(clock, downstream, request_context, replicas):
    gateway = _gateway(downstream, clock, replicas, (200, {"replica": "fast"}))
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and downstream.hits["inventory"] == 1
    assert _decisions(gateway) == []


def test_a_failing_hedge_waits_for_the_first_attempt(clock, downstream, request_context, replicas):
    gateway = _gateway(downstream, clock, replicas, None, (503, {"replica": "down"}))
    threading.Timer(0.2, replicas[0].release.set).start()
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "slow"}}
    assert _decisions(gateway) == ["hedge_fired"]


def test_a_4xx_is_an_answer_and_wins(clock, downstream, request_context, replicas):
    gateway = _gateway(downstream, clock, replicas, None, (404, {"missing": True}))
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert not isinstance(result, Success)
    assert _decisions(gateway) == ["hedge_fired", "hedge_won"]


def test_non_idempotent_calls_are_never_hedged(clock, downstream, request_context, replicas):
    gateway = _gateway(downstream, clock, replicas, None, (200, {"replica": "fast"}))
    threading.Timer(0.2, replicas[0].release.set).start()
    result = gateway.executor.run(endpoint(call("inventory", method="POST")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "slow"}}
    assert downstream.hits["inventory"] == 1 and _decisions(gateway) == []
    idempotent = gateway.executor.run(endpoint(call("inventory", method="POST", idempotent=True)), request_context)
    assert isinstance(idempotent, Success) and _decisions(gateway) == []  # replica 2+ answer fast: no hedge


def test_the_hedge_spends_the_retry_budget(clock, downstream, request_context, replicas):
    spent = RetryPolicy(max_retries=1, budget_percent=0, budget_min_per_s=0)
    gateway = _gateway(downstream, clock, replicas, None, (200, {"replica": "fast"}), retry=spent)
    threading.Timer(0.2, replicas[0].release.set).start()
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "slow"}}
    assert downstream.hits["inventory"] == 1
    assert _decisions(gateway) == ["hedge_over_budget"]


ONE_FAILURE_OPENS = BreakerPolicy(failure_threshold=1, window_s=60, open_s=60, half_open_probes=1)


def test_the_cancelled_loser_is_no_breaker_failure(clock, downstream, request_context, replicas, breaker_store):
    """The loser's late failure (what a cut connection looks like) is discarded and its
    permit released: a breaker that opens on one failure stays closed."""
    fast = (200, {"replica": "fast"})
    gateway = _gateway(
        downstream, clock, replicas, None, fast, slow_status=500, breaker=ONE_FAILURE_OPENS, store=breaker_store
    )
    assert isinstance(gateway.executor.run(endpoint(call("inventory")), request_context), Success)
    replicas[0].release.set()
    threading.Event().wait(0.3)  # the loser's thread ends its attempt (a 500) after the release
    breaker = gateway.pool.breaker("inventory")
    assert breaker.snapshot().state is BreakerState.CLOSED and breaker.snapshot().failures_in_window == 0
    assert gateway.executor.run(endpoint(call("inventory")), request_context) is not None
    assert breaker.acquire().allowed


def test_a_cancelled_hedge_is_no_breaker_failure(clock, downstream, request_context, breaker_store):
    """The other way round: the first attempt answers after the hedge went out, the hedge
    (which would have failed) is hung up on and does not count either."""
    hedge_sent = threading.Event()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            assert hedge_sent.wait(2)  # the first attempt: answers once the hedge is out
            threading.Event().wait(0.05)
            return httpx.Response(200, json={"replica": "first"})
        hedge_sent.set()
        sock = _Socket(threading.Event())
        cancel = request.extensions.get(ATTEMPT_CANCEL)
        if cancel is not None and not cancel.bind(sock):
            raise httpx.ReadError("attempt cancelled before it was sent", request=request)
        sock.wait(2)
        if sock.shut:
            raise httpx.ReadError("connection shut by the gateway", request=request)
        return httpx.Response(500, json={"replica": "hedge"})

    downstream.on("inventory", answer)
    services = [service("inventory", hedge=HEDGE, breaker=ONE_FAILURE_OPENS)]
    gateway = Gateway(services, downstream, clock, spawner=ThreadSpawner(), store=breaker_store)
    result = gateway.executor.run(endpoint(call("inventory")), request_context)
    assert isinstance(result, Success) and result.body == {"inventory": {"replica": "first"}}
    assert downstream.hits["inventory"] == 2 and _decisions(gateway) == ["hedge_fired"]
    threading.Event().wait(0.3)  # the hedge's thread ends its (cut) attempt
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
