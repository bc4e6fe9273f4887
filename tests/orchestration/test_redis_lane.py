"""The hot path's script lane (``orchestration.redis_lane``) against real Redis servers:
the same answers and the same exceptions as redis-py, and connections that are never
shared, never reused after a broken command, and never leaked by a killed greenlet."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, ResponseError, TimeoutError
from redis.retry import Retry

from gateway_project import redis_ha
from orchestration import redis_lane
from orchestration.edge.rate_store import Bucket
from orchestration.edge.redis_boundary import RedisBoundary, StoreUnavailable
from orchestration.edge.redis_rate_store import ACQUIRE, RedisRateStore
from orchestration.resilience import breaker_lua
from tests.support.fake_downstream import free_port
from tests.support.scripts import run_script

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/2")
ECHO = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}"
# busy in Redis for ARGV[2] µs, so a caller can be killed, or others queue, while it waits
SLOW = """
local start = redis.call('TIME')
while true do
  local now = redis.call('TIME')
  if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > tonumber(ARGV[2]) then break end
end
return ARGV[1]
"""


def _client(url: str = URL, retries: int = 1) -> redis.Redis:
    # as gateway_project.wiring.redis_client builds it
    return redis.Redis.from_url(
        url, socket_connect_timeout=0.25, socket_timeout=0.25, retry=Retry(NoBackoff(), retries)
    )


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    client = _client()
    try:
        client.ping()
    except redis.RedisError:
        pytest.skip("Redis not reachable at REDIS_URL")
    prefix = f"test:{uuid.uuid4().hex}:"
    client.prefix = prefix  # type: ignore[attr-defined]
    yield client
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed")
    args = [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--daemonize", "no"]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = _client(f"redis://127.0.0.1:{port}/0", retries=0)
    for _ in range(100):
        try:
            probe.ping()
            break
        except redis.RedisError:
            time.sleep(0.02)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGCONT)
    process.kill()
    process.wait(timeout=5)


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A redis-server of this test's own, to stop, freeze and kill."""
    port = free_port()
    process = _start_redis(port)
    yield process, port
    _stop(process)


def test_the_lane_is_used_for_a_plain_tcp_client_and_not_for_a_unix_socket():
    assert isinstance(redis_lane.register(_client(), ECHO), redis_lane.LaneScript)
    unix = redis.Redis(unix_socket_path="/nonexistent/redis.sock")
    assert isinstance(redis_lane.register(unix, ECHO), redis_lane._PyScript)


def test_a_sentinel_client_gets_the_lane_which_asks_the_sentinels_for_the_primary():
    # the failover itself: tests/e2e/test_redis_sentinel_e2e.py (rate limits shared again after it)
    settings = redis_ha.SentinelSettings(sentinels=(("127.0.0.1", free_port()),), master="gateway")
    client = settings.client(retry=Retry(NoBackoff(), 1))
    assert isinstance(redis_lane.register(client, ECHO), redis_lane.LaneScript)
    lane = redis_lane.lane_for(client)
    assert lane is not None and lane._address == client.connection_pool.get_master_address


def test_rate_limit_script_answers_exactly_as_through_redis_py(client):
    lane, py = redis_lane.register(client, ACQUIRE), client.register_script(ACQUIRE)
    assert isinstance(lane, redis_lane.LaneScript)
    now = 1_700_000_000.0
    for step in range(8):  # admitted, then refused: both keys walk through the same states
        args = [repr(now + step * 0.01), repr(0.0), 5, repr(60.0), 3, repr(1.0)]
        mine = lane(keys=[f"{client.prefix}lane:a", f"{client.prefix}lane:b"], args=args)
        theirs = py(keys=[f"{client.prefix}py:a", f"{client.prefix}py:b"], args=args)
        assert mine == theirs
    assert mine[1][0] == 0  # the 3-per-second bucket refused by now: both paths got there


def test_a_batch_answers_as_a_redis_py_pipeline_errors_included(client):
    lane = redis_lane.register(client, breaker_lua.PEEK)
    py = redis_lane._PyScript(client, breaker_lua.PEEK)
    args = ["1700000000.0", 5, "30.0", "10.0", 1, "30s", "10s", 0, "0.0", ""]
    calls = [
        ([f"{client.prefix}b:{{{s}}}", f"{client.prefix}b:{{{s}}}:f", f"{client.prefix}b:{{{s}}}:r"], args)
        for s in "xyz"
    ]
    assert lane.many(calls) == py.many(calls)
    broken = redis_lane.register(client, "return redis.call('INCR', KEYS[1])")
    client.set(f"{client.prefix}text", "not a number")
    answers = broken.many([([f"{client.prefix}n"], []), ([f"{client.prefix}text"], []), ([f"{client.prefix}n"], [])])
    assert answers[0] == 1 and answers[2] == 2
    assert isinstance(answers[1], ResponseError)


def test_a_script_error_raises_redis_pys_exception(client):
    broken = redis_lane.register(client, "return redis.call('INCR', KEYS[1])")
    client.set(f"{client.prefix}text", "not a number")
    with pytest.raises(ResponseError):
        broken(keys=[f"{client.prefix}text"])
    assert broken(keys=[f"{client.prefix}n"]) == 1  # the connection stays good after an error reply


@pytest.mark.parametrize("way", ["lane", "redis-py"])
def test_script_flush_loads_the_script_again(client, way):
    echo = redis_lane.register(client, ECHO) if way == "lane" else redis_lane._PyScript(client, ECHO)
    assert echo(keys=["k"], args=["a", 1]) == [b"k", b"a", 2]
    client.script_flush()
    assert echo(keys=["k"], args=["b", 2]) == [b"k", b"b", 3]
    client.script_flush()
    assert echo.many([(["k"], ["c", 3]), (["j"], ["d", 4])]) == [[b"k", b"c", 4], [b"j", b"d", 5]]


def test_auth_and_database_are_those_of_the_url(own_redis):
    _, port = own_redis
    admin = _client(f"redis://127.0.0.1:{port}/0")
    admin.config_set("requirepass", "s3cret")
    client = _client(f"redis://:s3cret@127.0.0.1:{port}/5")
    setter = redis_lane.register(client, "return redis.call('SET', KEYS[1], ARGV[1])")
    assert setter(keys=["where"], args=["db5"]) == b"OK"
    assert client.get("where") == b"db5"  # redis-py, same URL: the lane wrote in database 5
    wrong = redis_lane.register(_client(f"redis://:wrong@127.0.0.1:{port}/0"), ECHO)
    with pytest.raises(redis.AuthenticationError):
        wrong(keys=["k"], args=["a", 1])


def test_redis_stopped_is_store_unavailable_and_fails_open(own_redis):
    process, port = own_redis
    store = RedisRateStore(_client(f"redis://127.0.0.1:{port}/0"), RedisBoundary())
    bucket = Bucket(key="rl:user:42", limit=2, window_s=60)
    assert store.acquire([bucket], now=1000.0)[0].allowed
    process.kill()
    process.wait(timeout=5)
    with pytest.raises(StoreUnavailable):  # the pooled connection is dead, its retry refused
        store.acquire([bucket], now=1000.1)
    with pytest.raises(StoreUnavailable):  # and now the boundary answers without trying
        store.acquire([bucket], now=1000.2)


def test_after_a_redis_restart_the_next_call_is_answered(own_redis):
    process, port = own_redis
    slow = redis_lane.register(_client(f"redis://127.0.0.1:{port}/0"), SLOW)
    with ThreadPoolExecutor(4) as threads:  # four calls at once: four pooled connections
        assert list(threads.map(lambda i: slow(args=[i, 20_000]), range(4))) == [b"0", b"1", b"2", b"3"]
    _stop(process)
    restarted = _start_redis(port)
    try:  # every pooled connection is dead; the one retry goes on a new one, as redis-py's
        assert slow(args=["after", 0]) == b"after"
    finally:
        _stop(restarted)


def test_a_frozen_redis_times_out_and_its_late_reply_is_never_read(own_redis):
    process, port = own_redis
    echo = redis_lane.register(_client(f"redis://127.0.0.1:{port}/0", retries=0), ECHO)
    assert echo(keys=["k"], args=["first", 1]) == [b"k", b"first", 2]
    process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(TimeoutError):
            echo(keys=["k"], args=["late", 10])
    finally:
        process.send_signal(signal.SIGCONT)
    # the connection that timed out was closed: this answer is this call's, not the late one
    assert echo(keys=["k"], args=["next", 20]) == [b"k", b"next", 21]


def test_nothing_listening_is_a_connection_error():
    echo = redis_lane.register(_client(f"redis://127.0.0.1:{free_port()}/0"), ECHO)
    with pytest.raises(ConnectionError):
        echo(keys=["k"], args=["a", 1])


GEVENT_SCRIPT = textwrap.dedent(
    """
    from gevent import monkey; monkey.patch_all()
    import json, sys
    import gevent, gevent.pool, redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
    from orchestration import redis_lane

    client = redis.Redis.from_url(sys.argv[1], socket_timeout=2, retry=Retry(NoBackoff(), 1))
    echo = redis_lane.register(client, "return {ARGV[1]}")
    # busy in Redis for ~100 ms, so a caller can be killed while it waits for the reply
    slow = redis_lane.register(client, '''
      local start = redis.call('TIME')
      while true do
        local now = redis.call('TIME')
        if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 100000 then break end
      end
      return ARGV[1]''')
    lane = redis_lane.lane_for(client)

    answers = gevent.pool.Pool(50).map(lambda i: echo(args=[f"g{i}"]), range(50))
    own = all(answer == [f"g{i}".encode()] for i, answer in enumerate(answers))
    idle_after_burst = len(lane._idle)

    victim = gevent.spawn(slow, args=["for the victim"])
    gevent.sleep(0.02)  # it has sent its command and waits for the reply
    victim.kill()
    after_kill = [echo(args=[f"after{i}"]) for i in range(idle_after_burst + 2)]
    print(json.dumps({
        "own": own,
        "idle_after_burst": idle_after_burst,
        "killed": victim.dead and isinstance(victim.value, gevent.GreenletExit),
        "after_kill": [a[0].decode() for a in after_kill],
    }))
    """
)


def test_fifty_greenlets_each_get_their_own_answer_and_a_killed_one_poisons_nothing(client):
    report = run_script(GEVENT_SCRIPT, URL)
    assert report["own"]
    assert 1 < report["idle_after_burst"] <= 50  # concurrent calls each had a connection
    assert report["killed"]
    # every pooled connection answered its own command: the killed call's was closed, not pooled
    assert report["after_kill"] == [f"after{i}" for i in range(report["idle_after_burst"] + 2)]
