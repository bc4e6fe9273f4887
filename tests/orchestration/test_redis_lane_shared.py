"""``LaneScript.shared`` under gevent (the rate limit's call): the runs that start in one
loop iteration go to Redis in one round trip, and each caller still gets its own answer,
its own error, or the store's failure mode, as if it had gone alone.

Each scenario runs in a fresh interpreter patched by gevent (``GEVENT_SCRIPT``), counting
the lane's writes (``Lane._once``: one ``sendall`` and the reads of its replies)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from typing import Any

import pytest
import redis

from tests.orchestration.test_redis_lane import _client, own_redis  # noqa: F401 - a fixture
from tests.support.fake_downstream import free_port
from tests.support.scripts import ROOT, run_script

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/2")

GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, sys
    import gevent, redis
    from gevent import GreenletExit
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from orchestration import redis_lane
    from orchestration.edge.edge_metrics import NullEdgeMetrics
    from orchestration.edge.rate_store import Bucket
    from orchestration.edge.ratelimit import RateLimiter, RateSubject
    from orchestration.edge.redis_boundary import RedisBoundary, StoreUnavailable
    from orchestration.edge.redis_rate_store import ACQUIRE, RedisRateStore
    from orchestration.plan import RateLimitRule

    url, scenario, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    # as gateway_project.wiring.redis_client; a longer read timeout where Redis is kept busy on purpose
    timeout = 2 if "round-trip" in scenario else 0.25
    client = redis.Redis.from_url(url, socket_connect_timeout=0.25, socket_timeout=timeout, retry=Retry(NoBackoff(), 1))
    lane = redis_lane.lane_for(client)
    writes = []  # the number of commands of each write on the lane
    once = lane._once
    def counting(packed, replies):
        writes.append(replies)
        return once(packed, replies)
    lane._once = counting
    hub = gevent.get_hub()

    def register(source):
        client.script_load(source)  # known to Redis already: the writes counted are the runs'
        return redis_lane.register(client, source)

    def outcome(call):
        try:
            return {"answer": call()}
        except BaseException as error:
            return {"error": type(error).__name__}

    def together(calls):
        # greenlets started in one loop iteration: each reaches the script in the same one
        greenlets = [gevent.spawn(outcome, call) for call in calls]
        gevent.joinall(greenlets)
        return [g.value for g in greenlets]

    def text(value):
        if isinstance(value, list):
            return [text(v) for v in value]
        return value.decode() if isinstance(value, bytes) else value

    report = {}
    if scenario == "verdicts":
        # ten requests at once, each with a bucket shared by all (3 per minute) and one of its own
        register(ACQUIRE)
        store = RedisRateStore(client, RedisBoundary())
        shared = Bucket(prefix + "shared", 3, 60)
        def acquire(i, tag):
            states = store.acquire([shared, Bucket(f"{prefix}own:{i}", 2, 60)], 1_700_000_000.0)
            return [[s.allowed, s.remaining, s.reset_s, s.retry_after_s] for s in states]
        report["together"] = [o["answer"] for o in together([lambda i=i: acquire(i, "a") for i in range(10)])]
        report["writes"] = writes[:]
        # the same ten one after another, on fresh keys: the answers each got alone
        shared = Bucket(prefix + "alone:shared", 3, 60)
        prefix += "alone:"
        report["alone"] = [acquire(i, "b") for i in range(10)]
    elif scenario == "alone":
        incr = register("return redis.call('INCR', KEYS[1])")
        client.set(prefix + "text", "not a number")
        def after_a_nap(key):
            gevent.sleep(0.01)  # woken by its timer: nothing else runs in that iteration
            return incr.shared([key])
        report["outcomes"] = [
            outcome(lambda: incr.shared([prefix + "n"])),
            outcome(lambda: incr.shared([prefix + "text"])),
            gevent.spawn(outcome, lambda: after_a_nap(prefix + "n")).get(),
        ]
        report["writes"] = writes[:]
    elif scenario == "one-bad-reply":
        incr = register("return redis.call('INCR', KEYS[1])")
        client.set(prefix + "text", "not a number")
        keys = [prefix + ("text" if i == 2 else f"n{i}") for i in range(5)]
        report["outcomes"] = together([lambda k=k: incr.shared([k]) for k in keys])
        report["writes"] = writes[:]
    elif scenario == "noscript":
        echo = redis_lane.register(client, "return {KEYS[1], ARGV[1]}")
        client.script_flush()
        outcomes = together([lambda i=i: echo.shared([f"k{i}"], [i]) for i in range(6)])
        report["answers"] = [text(o["answer"]) for o in outcomes]
        report["writes"] = writes[:]  # the batch, SCRIPT LOAD, the batch again
    elif scenario == "redis-down":
        limiter = RateLimiter(RedisRateStore(client, RedisBoundary()), metrics=NullEdgeMetrics())
        rules = [RateLimitRule(scope="user", limit=5, window_s=60)]
        def check(i):
            subject = RateSubject(endpoint="profile", client_ip="203.0.113.7", user_id=f"u{i}")
            verdict = limiter.check(layer_rules=rules, endpoint_rules=[], subject=subject)
            return {"enforced": verdict.enforced, "error": verdict.error is not None}
        report["verdicts"] = [o["answer"] for o in together([lambda i=i: check(i) for i in range(8)])]
        store = RedisRateStore(client, RedisBoundary())
        def acquire(i):
            return store.acquire([Bucket(f"{prefix}{i}", 5, 60)], 1_700_000_000.0)
        report["store"] = together([lambda i=i: acquire(i) for i in range(4)])
        report["writes"] = writes[:]
    elif scenario in ("kill-lead-before-flush", "kill-follower-before-flush"):
        incr = register("return redis.call('INCR', KEYS[1])")
        victim = 0 if scenario == "kill-lead-before-flush" else 2
        greenlets = [gevent.spawn(outcome, lambda i=i: incr.shared([f"{prefix}n{i}"])) for i in range(5)]
        # after all five joined the batch and before its flush: as a kill landing in that turn
        hub.loop.run_callback(lambda: greenlets[victim].throw(GreenletExit))
        gevent.joinall(greenlets)
        report["outcomes"] = [g.value for g in greenlets]
        report["counters"] = [text(client.get(f"{prefix}n{i}")) for i in range(5)]
        report["writes"] = writes[:]
    elif scenario in ("kill-lead-in-round-trip", "kill-follower-in-round-trip"):
        slow = register('''
          local start = redis.call('TIME')
          while true do
            local now = redis.call('TIME')
            if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 100000 then break end
          end
          return redis.call('INCR', KEYS[1])''')
        victim = 0 if scenario == "kill-lead-in-round-trip" else 1
        greenlets = [gevent.spawn(outcome, lambda i=i: slow.shared([f"{prefix}n{i}"])) for i in range(3)]
        gevent.sleep(0.05)  # the batch is sent and Redis busy with it
        greenlets[victim].kill()
        gevent.joinall(greenlets)
        report["outcomes"] = [g.value for g in greenlets]
        echo = register("return ARGV[1]")
        report["after"] = [text(echo.shared([], [f"after{i}"])) for i in range(3)]
        report["writes"] = writes[:]
    elif scenario == "frozen":
        echo = redis_lane.register(client, "return ARGV[1]")
        assert echo.shared([], ["warm"]) == b"warm"
        print(json.dumps({"ready": True}), flush=True)
        sys.stdin.readline()  # the test stops Redis (SIGSTOP) and says go
        report["frozen"] = together([lambda i=i: echo.shared([], [f"late{i}"]) for i in range(4)])
        print(json.dumps({"frozen_done": True}), flush=True)
        sys.stdin.readline()  # the test resumes Redis (SIGCONT)
        after = together([lambda i=i: echo.shared([], [f"next{i}"]) for i in range(4)])
        report["after"] = [text(o["answer"]) for o in after]
        report["writes"] = writes[:]
    print(json.dumps(report))
    """
)


def _run(scenario: str, url: str = URL) -> Any:
    return run_script(GEVENT_SCRIPT, url, scenario, f"test:{uuid.uuid4().hex}:")


@pytest.fixture
def redis_up() -> None:
    try:
        _client().ping()
    except redis.RedisError:
        pytest.skip("Redis not reachable at REDIS_URL")


def test_runs_started_together_share_one_round_trip_and_each_gets_its_own_verdict(redis_up):
    report = _run("verdicts")
    assert report["writes"] == [10]  # one write carried all ten runs (before: ten writes)
    assert report["together"] == report["alone"]  # the same answers, in the same order
    assert [own_first[0][0] for own_first in report["together"]] == [True] * 3 + [False] * 7
    assert all(buckets[1][0] for buckets in report["together"][:3])


def test_a_run_alone_in_its_iteration_is_answered_on_a_write_of_its_own(redis_up):
    report = _run("alone")
    assert report["outcomes"] == [{"answer": 1}, {"error": "ResponseError"}, {"answer": 2}]
    assert report["writes"] == [1, 1, 1]


def test_an_error_reply_is_only_its_callers(redis_up):
    report = _run("one-bad-reply")
    assert report["writes"] == [5]
    assert report["outcomes"] == [{"answer": 1}] * 2 + [{"error": "ResponseError"}] + [{"answer": 1}] * 2


def test_a_flushed_script_is_loaded_once_and_the_batch_answered(redis_up):
    report = _run("noscript")
    assert report["answers"] == [[f"k{i}", str(i)] for i in range(6)]
    assert report["writes"] == [6, 1, 6]  # the batch (NOSCRIPT each), SCRIPT LOAD, the batch again


def test_redis_down_fails_open_for_every_request_of_the_batch():
    report = _run("redis-down", f"redis://127.0.0.1:{free_port()}/0")
    assert report["verdicts"] == [{"enforced": False, "error": False}] * 8  # admitted, not enforced
    assert report["store"] == [{"error": "StoreUnavailable"}] * 4
    assert report["writes"] == [8, 8, 4, 4]  # one try and its one retry, for each batch


@pytest.mark.parametrize("victim", ["lead", "follower"])
def test_a_caller_killed_before_the_flush_is_dropped_and_the_others_answered(redis_up, victim):
    report = _run(f"kill-{victim}-before-flush")
    killed = 0 if victim == "lead" else 2
    for i, outcome in enumerate(report["outcomes"]):
        assert outcome == ({"error": "GreenletExit"} if i == killed else {"answer": 1})
    assert report["counters"] == [None if i == killed else "1" for i in range(5)]  # its command never sent
    assert report["writes"] == [4]


@pytest.mark.parametrize("victim", ["lead", "follower"])
def test_a_caller_killed_in_the_round_trip_breaks_nothing(redis_up, victim):
    report = _run(f"kill-{victim}-in-round-trip")
    killed = 0 if victim == "lead" else 1
    # the others answered (a run sent again after its lead was killed may count twice, as the
    # lane's retry after a broken connection may: the first batch was executed by Redis)
    for i, outcome in enumerate(report["outcomes"]):
        expected = [{"error": "GreenletExit"}] if i == killed else [{"answer": 1}, {"answer": 2}]
        assert outcome in (expected if victim == "lead" else expected[:1])
    # every later call gets its own reply: no late reply of the killed batch is read as one
    assert report["after"] == ["after0", "after1", "after2"]
    if victim == "lead":  # the lead's connection closed with it; the others' runs went again
        assert report["writes"][:2] == [3, 2]
    else:
        assert report["writes"][0] == 3


def test_a_frozen_redis_times_out_the_whole_batch_and_its_late_replies_are_never_read(own_redis):  # noqa: F811
    process, port = own_redis
    child = subprocess.Popen(
        [sys.executable, "-c", GEVENT_SCRIPT, f"redis://127.0.0.1:{port}/0", "frozen", "p:"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert json.loads(child.stdout.readline()) == {"ready": True}
        process.send_signal(signal.SIGSTOP)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert json.loads(child.stdout.readline()) == {"frozen_done": True}
        process.send_signal(signal.SIGCONT)
        child.stdin.write("go\n")
        child.stdin.flush()
        report = json.loads(child.stdout.readline())
        assert child.wait(timeout=30) == 0
    finally:
        process.send_signal(signal.SIGCONT)
        if child.poll() is None:
            child.kill()
    assert report["frozen"] == [{"error": "TimeoutError"}] * 4
    assert report["after"] == ["next0", "next1", "next2", "next3"]
    # the warm-up (NOSCRIPT, SCRIPT LOAD, again); the frozen batch and its retry; the next batch
    assert report["writes"] == [1, 1, 1, 4, 4, 4]
