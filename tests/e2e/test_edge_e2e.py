"""Issue 4, end to end: rate limits, the response cache and signed invalidation, served
by real gunicorn (2 gevent workers) on PostgreSQL and Redis, with a real Celery worker
consuming the invalidation queue and fake services on loopback.

One gateway serves the module (database and Redis db from DATABASE_URL/REDIS_URL,
``gw_edge_e2e`` and 8 by default; the Celery broker uses the next Redis db). Each test
uses its own endpoint, users or path parameters, so the tests share the gateway without
sharing buckets or cache entries. The Redis fault test starts a second gunicorn on the
same database whose REDIS_URL is a redis-server of its own, and kills that server while
requests are being served.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import yaml

from tests.e2e.client import HttpReply, user_token
from tests.e2e.conftest import (
    ROOT,
    VENV_BIN,
    GatewayServer,
    isolated_targets,
    process_env,
    start_gunicorn,
    stop_process,
    wait_until_up,
)
from tests.support.fake_downstream import FakeDownstream, free_port
from tests.support.redis import redis_url_for_db

pytestmark = pytest.mark.e2e

JWT_SECRET = "edge-e2e-jwt-secret-with-enough-bytes-for-hs256"
WEBHOOK_SECRET = "edge-e2e-webhook-secret-0123456789"
BASE = "/v1/edge"
SLOW_S = 0.3
PURGE_WAIT_S = 8.0


# ---------------------------------------------------------------------------
# The services the gateway calls
# ---------------------------------------------------------------------------


@dataclass
class Fakes:
    users: FakeDownstream  # /users/<id> and /profiles/<id>: the user's own data
    catalog: FakeDownstream  # /products/<sku>
    flaky: FakeDownstream  # /stock: 500 until a test switches it
    slow: FakeDownstream  # /slow: answers after SLOW_S, numbering its runs
    ping: FakeDownstream  # /ping: for the rate-limited endpoints


def _person(handler: Any) -> tuple[int, Any]:
    kind, user_id = urlsplit(handler.path).path.strip("/").split("/", 1)
    return 200, {"id": user_id, "name": f"User {user_id}", "kind": kind}


def _product(handler: Any) -> tuple[int, Any]:
    sku = urlsplit(handler.path).path.rsplit("/", 1)[1]
    return 200, {"sku": sku, "price": 100 + len(sku)}


@pytest.fixture(scope="module")
def fakes(module_fake_downstream: Callable[[dict[str, Any]], FakeDownstream]) -> Fakes:
    slow_runs = iter(range(1, 10_000))
    slow_lock = threading.Lock()

    def slow_answer(_handler: Any) -> tuple[int, Any]:
        with slow_lock:
            run = next(slow_runs)
        time.sleep(SLOW_S)
        return 200, {"run": run}

    return Fakes(
        users=module_fake_downstream({"*": _person}),
        catalog=module_fake_downstream({"*": _product}),
        flaky=module_fake_downstream({"/stock": (500, {"error": "stock service is down"})}),
        slow=module_fake_downstream({"/slow": slow_answer}),
        ping=module_fake_downstream({"/ping": (200, {"pong": True})}),
    )


def _service(base_url: str) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "owner": "Edge e2e",
        "avg_latency_ms": 10,
        "sla": 99.0,
        "timeout_ms": 1500,
        "auth": {"type": "none"},
        "breaker": {"failure_threshold": 100, "window_s": 60, "open_s": 30, "half_open_probes": 1},
        "retry": {"max_retries": 0, "backoff": "none", "base_ms": 100, "jitter": False, "retry_on": []},
        "bulkhead": {"max_concurrent": 100, "max_wait_ms": 0},
    }


def _endpoint(
    name: str,
    path: str,
    call: dict[str, Any],
    response: Any,
    *,
    cache: dict[str, Any] | None = None,
    rate_limits: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": name,
        "method": "GET",
        "path": path,
        "purpose": f"edge e2e: {name}",
        "timeout_ms": 3000,
        "cache": cache or {"ttl_s": 0},
        "calls": [{"stage": 1, "method": "GET", "required": True, "timeout_ms": 2000, **call}],
        "response": response,
    }
    if rate_limits is not None:
        document["rate_limits"] = rate_limits
    return document


def edge_config(fakes: Fakes) -> str:
    ping = {"id": "ping", "service": "ping", "path": "/ping"}
    document = {
        "version": 1,
        "layer": {
            "name": "Edge e2e",
            "owner": "Edge e2e",
            "base_path": BASE,
            "transport": "rest",
            "auth": {
                "type": "jwt",
                "jwt": {"algorithms": ["HS256"], "secret_env": "GATEWAY_JWT_SECRET", "user_claim": "sub"},
            },
            "rate_limits": [],
        },
        "services": {
            name: _service(getattr(fakes, name).url) for name in ("users", "catalog", "flaky", "slow", "ping")
        },
        "endpoints": [
            _endpoint(
                "limited-user",
                "/limited/user",
                ping,
                {"pong": "{{ ping.pong }}", "user": "{{ user.sub }}"},
                rate_limits=[{"scope": "user", "limit": 3, "window_s": 60}],
            ),
            _endpoint(
                "limited-ip",
                "/limited/ip",
                ping,
                {"pong": "{{ ping.pong }}"},
                rate_limits=[{"scope": "ip", "limit": 3, "window_s": 60}],
            ),
            _endpoint(
                "limited-global",
                "/limited/global",
                ping,
                {"pong": "{{ ping.pong }}"},
                rate_limits=[{"scope": "global", "limit": 2, "window_s": 60}],
            ),
            _endpoint(
                "me",
                "/me",
                {"id": "me", "service": "users", "path": "/users/{{ user.sub }}"},
                {"user": "{{ user.sub }}", "profile": "{{ me }}"},
                cache={"ttl_s": 60, "scope": "user"},
            ),
            _endpoint(
                "stock",
                "/stock",
                {"id": "stock", "service": "flaky", "path": "/stock"},
                {"stock": "{{ stock }}"},
                cache={"ttl_s": 60, "scope": "shared"},
            ),
            _endpoint(
                "slow",
                "/slow",
                {"id": "slow", "service": "slow", "path": "/slow"},
                {"slow": "{{ slow }}"},
                cache={"ttl_s": 60, "scope": "shared"},
            ),
            _endpoint(
                "profile",
                "/profile",
                {"id": "profile", "service": "users", "path": "/profiles/{{ user.sub }}"},
                {"profile": "{{ profile }}"},
                cache={
                    "ttl_s": 60,
                    "scope": "user",
                    "tags": ["user:{{ user.sub }}"],
                    "invalidate_on": [{"event": "user.updated", "tags": ["user:{{ event.userId }}"]}],
                },
            ),
            _endpoint(
                "product",
                "/products/{sku}",
                {"id": "product", "service": "catalog", "path": "/products/{{ request.path.sku }}"},
                {"product": "{{ product }}"},
                cache={
                    "ttl_s": 60,
                    "scope": "shared",
                    "tags": ["sku:{{ request.path.sku }}", "catalog"],
                    "invalidate_on": [{"event": "product.updated", "tags": ["sku:{{ event.sku }}"]}],
                },
            ),
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


# ---------------------------------------------------------------------------
# The gateway, its Celery worker, and a second gateway on a Redis we can kill
# ---------------------------------------------------------------------------


def _broker_url() -> str:
    redis_db = isolated_targets("edge", 8)[1]
    return redis_url_for_db(redis_db + 1 if redis_db < 15 else redis_db - 1)


@dataclass
class CeleryWorker:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("celery worker exited:\n" + self.log()[-3000:])
            if re.search(r"@\S+ ready\.", self.log()):
                return
            time.sleep(0.1)
        raise AssertionError("celery worker not ready:\n" + self.log()[-3000:])

    def wait_done(self, task_id: str, timeout_s: float = PURGE_WAIT_S) -> str:
        """The worker's success line for ``task_id`` (its return value included)."""
        pattern = re.compile(rf"Task gateway\.purge_cache_tags\[{re.escape(task_id)}\] succeeded[^\n]*")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = pattern.search(self.log())
            if found:
                return found.group(0)
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} did not succeed in {timeout_s}s:\n" + self.log()[-3000:])

    def stop(self) -> None:
        stop_process(self.process)

    @classmethod
    def start(cls, workdir: Path, env: Mapping[str, str], *, name: str) -> CeleryWorker:
        """A solo-pool worker on the default queue, logging to ``workdir/celery.log``."""
        log_path = workdir / "celery.log"
        command = [str(VENV_BIN / "celery"), "-A", "gateway_project", "worker", "--pool", "solo", "-c", "1"]
        command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", "celery", "-l", "info"]
        command += ["--hostname", f"{name}-{os.getpid()}@%h"]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=dict(env),
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return cls(process, log_path)


@pytest.fixture(scope="module")
def celery_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryWorker]:
    """A real worker on the invalidation queue; started first so it boots while the
    gateway's database is prepared (it touches the database only when a task runs)."""
    database, redis_db = isolated_targets("edge", 8)
    broker = _broker_url()
    client = redis.Redis.from_url(broker)
    try:
        client.flushdb()  # no task left over from an earlier run
    finally:
        client.close()
    workdir = tmp_path_factory.mktemp("celery")
    env = {
        **process_env(workdir, database=database, redis_db=redis_db),
        "CELERY_BROKER_URL": broker,
        "GATEWAY_JWT_SECRET": JWT_SECRET,
        "GATEWAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    worker = CeleryWorker.start(workdir, env, name="edge-e2e")
    yield worker
    worker.stop()


@dataclass
class Gateway:
    server: GatewayServer
    fakes: Fakes
    worker: CeleryWorker


@pytest.fixture(scope="module")
def gateway(celery_worker: CeleryWorker, module_gateway_server: Callable[..., GatewayServer], fakes: Fakes) -> Gateway:
    database, redis_db = isolated_targets("edge", 8)
    server = module_gateway_server(
        edge_config(fakes),
        {
            "GATEWAY_JWT_SECRET": JWT_SECRET,
            "GATEWAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CELERY_BROKER_URL": _broker_url(),
            "GATEWAY_TRUSTED_PROXIES": "",
        },
        workers=2,
        database=database,
        redis_db=redis_db,
    )
    celery_worker.wait_ready()
    return Gateway(server, fakes, celery_worker)


# ---------------------------------------------------------------------------
# Talking to it
# ---------------------------------------------------------------------------


def token(sub: str) -> str:
    return user_token(sub, JWT_SECRET)


@dataclass
class Reply(HttpReply):
    started: float  # time.monotonic() when sent


def send(
    server: GatewayServer,
    method: str,
    path: str,
    *,
    sub: str | None = None,
    raw: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """One request on a new connection; every answer must carry X-Request-ID."""
    all_headers = dict(headers or {})
    if sub is not None:
        all_headers["Authorization"] = f"Bearer {token(sub)}"
    if raw is not None:
        all_headers.setdefault("Content-Type", "application/json")
    parts = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    started = time.monotonic()
    try:
        connection.request(method, path, body=raw, headers=all_headers)
        response = connection.getresponse()
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read(), started)
    finally:
        connection.close()
    assert reply.headers.get("x-request-id"), f"{method} {path}: no X-Request-ID"
    return reply


def get(gw: Gateway, path: str, sub: str, **kwargs: Any) -> Reply:
    return send(gw.server, "GET", BASE + path, sub=sub, **kwargs)


def assert_envelope(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"error", "data"} and body["data"] == {}, body
    error: dict[str, Any] = body["error"]
    assert error["code"] == code, body
    assert isinstance(error["message"], str) and error["message"]
    assert error["requestId"] == reply.headers["x-request-id"]
    return error


def rate_headers(reply: Reply) -> dict[str, str]:
    return {k: v for k, v in reply.headers.items() if k.startswith("ratelimit-")}


# ---------------------------------------------------------------------------
# 1-3. Rate limits
# ---------------------------------------------------------------------------


def test_per_user_limit_refuses_the_fourth_request_of_that_user_only(gateway: Gateway) -> None:
    before = gateway.fakes.ping.hits["/ping"]
    replies = [get(gateway, "/limited/user", "alice") for _ in range(4)]

    for reply, remaining in zip(replies[:3], ("2", "1", "0"), strict=True):
        assert reply.status == 200, reply.raw
        assert reply.json() == {"pong": True, "user": "alice"}
        headers = rate_headers(reply)
        assert 1 <= int(headers.pop("ratelimit-reset")) <= 60
        assert headers == {"ratelimit-limit": "3", "ratelimit-remaining": remaining, "ratelimit-policy": "3;w=60"}
        assert "retry-after" not in reply.headers

    refused = replies[3]
    error = assert_envelope(refused, 429, "RATE_LIMITED")
    assert "user" in error["message"]
    # GCRA: 3 per 60 s refills one request every 20 s, so the next one is ~20 s away.
    assert 15 <= int(refused.headers["retry-after"]) <= 20
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert 1 <= int(refused.headers["ratelimit-reset"]) <= 60
    assert refused.headers["cache-control"] == "no-store"

    other = get(gateway, "/limited/user", "bob")
    assert other.status == 200, other.raw
    assert other.json() == {"pong": True, "user": "bob"}
    assert other.headers["ratelimit-remaining"] == "2"
    assert gateway.fakes.ping.hits["/ping"] - before == 4  # alice's 3 and bob's 1: the refused one never ran


def test_per_ip_limit_ignores_spoofed_forwarded_for_from_an_untrusted_peer(gateway: Gateway) -> None:
    before = gateway.fakes.ping.hits["/ping"]
    spoofed = ["203.0.113.10", "198.51.100.20, 203.0.113.11", "10.1.2.3", "192.0.2.99"]
    replies = [
        get(gateway, "/limited/ip", f"ip-user-{n}", headers={"X-Forwarded-For": value})
        for n, value in enumerate(spoofed)
    ]

    assert [r.status for r in replies] == [200, 200, 200, 429], [r.raw for r in replies]
    assert [r.headers["ratelimit-remaining"] for r in replies] == ["2", "1", "0", "0"]
    error = assert_envelope(replies[3], 429, "RATE_LIMITED")
    assert "ip" in error["message"]
    assert int(replies[3].headers["retry-after"]) >= 1
    assert gateway.fakes.ping.hits["/ping"] - before == 3


def test_global_limit_answers_503_overloaded_with_retry_after(gateway: Gateway) -> None:
    replies = [get(gateway, "/limited/global", f"global-user-{n}") for n in range(3)]

    assert [r.status for r in replies[:2]] == [200, 200], [r.raw for r in replies]
    assert_envelope(replies[2], 503, "OVERLOADED")
    # 2 per 60 s: the next request is admitted ~30 s later.
    assert 25 <= int(replies[2].headers["retry-after"]) <= 30
    assert replies[2].headers["ratelimit-policy"] == "2;w=60"
    assert replies[2].headers["cache-control"] == "no-store"  # a CDN must not keep the refusal


def test_errors_the_gateway_makes_on_a_cached_endpoint_are_never_cacheable(gateway: Gateway) -> None:
    anonymous = send(gateway.server, "GET", f"{BASE}/me")
    assert_envelope(anonymous, 401, "UNAUTHENTICATED")
    unknown = get(gateway, "/me/nothing-here", "alice")
    assert_envelope(unknown, 404, "NOT_FOUND")
    for reply in (anonymous, unknown):
        assert reply.headers["cache-control"] == "no-store"
        assert "x-cache" not in reply.headers


# ---------------------------------------------------------------------------
# 4-5. The response cache
# ---------------------------------------------------------------------------


def _max_age(reply: Reply, visibility: str) -> int:
    found = re.fullmatch(rf"{visibility}, max-age=(\d+)", reply.headers["cache-control"])
    assert found, reply.headers["cache-control"]
    return int(found.group(1))


def test_user_scoped_cache_hits_for_the_same_user_and_never_serves_another(gateway: Gateway) -> None:
    users = gateway.fakes.users
    first = get(gateway, "/me", "alice")
    time.sleep(1.1)  # so the hit's Age is at least one second
    second = get(gateway, "/me", "alice")

    alice = {"user": "alice", "profile": {"id": "alice", "name": "User alice", "kind": "users"}}
    assert (first.status, first.json()) == (200, alice)
    assert first.headers["x-cache"] == "MISS"
    assert first.headers["cache-control"] == "private, max-age=60"
    assert first.headers["age"] == "0"

    assert (second.status, second.json()) == (200, alice)
    assert second.headers["x-cache"] == "HIT"
    max_age, age = _max_age(second, "private"), int(second.headers["age"])
    assert 1 <= age <= 3
    assert 55 <= max_age <= 59 and 58 <= max_age + age <= 60
    assert users.hits["/users/alice"] == 1

    other = get(gateway, "/me", "bob")
    assert (other.status, other.json()) == (
        200,
        {"user": "bob", "profile": {"id": "bob", "name": "User bob", "kind": "users"}},
    )
    assert other.headers["x-cache"] == "MISS"
    assert users.hits["/users/bob"] == 1
    assert get(gateway, "/me", "bob").headers["x-cache"] == "HIT"
    again = get(gateway, "/me", "alice")
    assert (again.headers["x-cache"], again.json()) == ("HIT", alice)
    assert (users.hits["/users/alice"], users.hits["/users/bob"]) == (1, 1)


def test_errors_are_not_cached_and_the_next_request_asks_again(gateway: Gateway) -> None:
    flaky = gateway.fakes.flaky
    for attempt in (1, 2):
        reply = get(gateway, "/stock", "alice")
        error = assert_envelope(reply, 502, "DOWNSTREAM_FAILURE")
        assert error["failedServices"] == ["flaky"]
        assert reply.headers["x-cache"] == "MISS"
        assert reply.headers["cache-control"] == "no-store"
        assert flaky.hits["/stock"] == attempt

    flaky.routes["/stock"] = (200, {"units": 5})
    fresh, cached = get(gateway, "/stock", "alice"), get(gateway, "/stock", "bob")
    assert (fresh.status, fresh.json(), fresh.headers["x-cache"]) == (200, {"stock": {"units": 5}}, "MISS")
    assert fresh.headers["cache-control"] == "private, max-age=60"  # shared by us; behind client auth
    assert (cached.status, cached.json(), cached.headers["x-cache"]) == (200, {"stock": {"units": 5}}, "HIT")
    assert _max_age(cached, "private") <= 60
    assert flaky.hits["/stock"] == 3


def test_concurrent_misses_on_one_key_call_the_downstream_at_most_once_per_process(gateway: Gateway) -> None:
    count = 10
    barrier = threading.Barrier(count)

    def one(_: int) -> Reply:
        barrier.wait(timeout=10)
        return get(gateway, "/slow?k=stampede", "alice")

    with ThreadPoolExecutor(max_workers=count) as pool:
        replies = list(pool.map(one, range(count)))

    hits = gateway.fakes.slow.hits["/slow"]
    assert 1 <= hits <= 2, f"{hits} downstream calls for {count} concurrent misses on 2 workers"
    assert all(r.status == 200 for r in replies), [r.raw for r in replies]
    assert {r.json()["slow"]["run"] for r in replies} <= set(range(1, hits + 1))
    states = [r.headers["x-cache"] for r in replies]
    assert states.count("MISS") == hits, states  # each MISS was a downstream call, the rest were served from it
    assert states.count("HIT") == count - hits, states
    assert get(gateway, "/slow?k=stampede", "bob").headers["x-cache"] == "HIT"
    assert gateway.fakes.slow.hits["/slow"] == hits


# ---------------------------------------------------------------------------
# 6. Signed invalidation through the Celery worker
# ---------------------------------------------------------------------------


def signed(payload: Any, secret: str = WEBHOOK_SECRET) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    return body, "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook(gw: Gateway, body: bytes, signature: str | None) -> Reply:
    headers = {} if signature is None else {"X-Gateway-Signature": signature}
    return send(gw.server, "POST", "/webhooks/invalidate", raw=body, headers=headers)


def accepted(gw: Gateway, payload: Any) -> str:
    body, signature = signed(payload)
    reply = webhook(gw, body, signature)
    assert reply.status == 202, reply.raw
    answer = reply.json()
    assert answer["status"] == "accepted"
    assert isinstance(answer["taskId"], str) and answer["taskId"]
    return str(answer["taskId"])


def warm(gw: Gateway, path: str, sub: str) -> None:
    """Make ``path`` cached for ``sub`` (at most one fill)."""
    if get(gw, path, sub).headers["x-cache"] != "HIT":
        assert get(gw, path, sub).headers["x-cache"] == "HIT"


def cache_state(gw: Gateway, path: str, sub: str) -> str:
    reply = get(gw, path, sub)
    assert reply.status == 200, reply.raw
    return reply.headers["x-cache"]


def wait_for_miss(gw: Gateway, path: str, sub: str) -> Reply:
    """Poll until the entry is gone (the worker purged it): the MISS that refills it."""
    deadline = time.monotonic() + PURGE_WAIT_S
    while True:
        reply = get(gw, path, sub)
        if reply.headers["x-cache"] == "MISS" or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


def test_signed_event_purges_exactly_the_users_entries_in_the_worker(gateway: Gateway) -> None:
    users = gateway.fakes.users
    for sub in ("42", "7"):
        warm(gateway, "/profile", sub)
    warm(gateway, "/products/SKU-1", "42")
    before = users.hits["/profiles/42"], users.hits["/profiles/7"]

    task_id = accepted(gateway, {"event": "user.updated", "data": {"userId": "42"}})
    refilled = wait_for_miss(gateway, "/profile", "42")

    assert refilled.headers["x-cache"] == "MISS", "user 42's entry was not purged"
    assert refilled.json() == {"profile": {"id": "42", "name": "User 42", "kind": "profiles"}}
    done = gateway.worker.wait_done(task_id)
    assert "'tags': ['user:42']" in done and "'purged': 1" in done, done
    assert cache_state(gateway, "/profile", "7") == "HIT"
    assert cache_state(gateway, "/products/SKU-1", "7") == "HIT"
    assert cache_state(gateway, "/profile", "42") == "HIT"  # refilled by the MISS above
    assert (users.hits["/profiles/42"], users.hits["/profiles/7"]) == (before[0] + 1, before[1])


def test_path_param_tags_and_the_tags_form_purge_only_what_they_name(gateway: Gateway) -> None:
    catalog = gateway.fakes.catalog
    for sku in ("SKU-A", "SKU-B", "SKU-C"):
        warm(gateway, f"/products/{sku}", "42")
    warm(gateway, "/profile", "7")
    skus = ("SKU-A", "SKU-B", "SKU-C")
    before = {sku: catalog.hits[f"/products/{sku}"] for sku in skus}

    # An event rendered over the endpoint's path parameter: sku:SKU-A only.
    task_id = accepted(gateway, {"event": "product.updated", "data": {"sku": "SKU-A"}})
    assert wait_for_miss(gateway, "/products/SKU-A", "7").headers["x-cache"] == "MISS"
    assert "'purged': 1" in gateway.worker.wait_done(task_id)
    assert cache_state(gateway, "/products/SKU-B", "7") == "HIT"
    assert cache_state(gateway, "/products/SKU-C", "7") == "HIT"

    # The tags form, as given: SKU-B's entry and user 7's profile.
    task_id = accepted(gateway, {"tags": ["sku:SKU-B", "user:7"]})
    assert wait_for_miss(gateway, "/products/SKU-B", "42").headers["x-cache"] == "MISS"
    assert "'purged': 2" in gateway.worker.wait_done(task_id)
    assert cache_state(gateway, "/profile", "7") == "MISS"
    assert cache_state(gateway, "/products/SKU-A", "7") == "HIT"
    assert cache_state(gateway, "/products/SKU-C", "7") == "HIT"
    refills = {sku: catalog.hits[f"/products/{sku}"] - before[sku] for sku in skus}
    assert refills == {"SKU-A": 1, "SKU-B": 1, "SKU-C": 0}


def test_bad_signature_is_401_and_purges_nothing(gateway: Gateway) -> None:
    for sub in ("42", "7"):
        warm(gateway, "/profile", sub)
    for sku in ("SKU-A", "SKU-C"):
        warm(gateway, f"/products/{sku}", "42")
    received_before = gateway.worker.log().count("] received")
    payload = {"tags": ["user:42", "user:7", "catalog"]}
    body, good = signed(payload)
    attempts = {
        "missing": None,
        "wrong secret": signed(payload, "not-the-secret")[1],
        "other body": signed({"tags": ["catalog"]})[1],
        "no prefix": good.removeprefix("sha256="),
        "zeros": "sha256=" + "0" * 64,
    }
    for name, signature in attempts.items():
        reply = webhook(gateway, body, signature)
        assert_envelope(reply, 401, "UNAUTHENTICATED")
        assert "taskId" not in reply.json(), name
        assert reply.headers["cache-control"] == "no-store", name

    # The queue is FIFO with one solo worker: once a later signed no-op is done, anything
    # the refused requests had queued would have run too.
    marker = accepted(gateway, {"event": "nobody.listens", "data": {"userId": "42"}})
    assert "'purged': 0" in gateway.worker.wait_done(marker)
    assert gateway.worker.log().count("] received") == received_before + 1  # the marker alone was queued
    states = {
        "42": cache_state(gateway, "/profile", "42"),
        "7": cache_state(gateway, "/profile", "7"),
        "SKU-A": cache_state(gateway, "/products/SKU-A", "7"),
        "SKU-C": cache_state(gateway, "/products/SKU-C", "7"),
    }
    assert states == {"42": "HIT", "7": "HIT", "SKU-A": "HIT", "SKU-C": "HIT"}


# ---------------------------------------------------------------------------
# 7. Redis killed while the gateway serves
# ---------------------------------------------------------------------------


@dataclass
class FaultGateway:
    server: GatewayServer
    redis_process: subprocess.Popen[bytes]


@pytest.fixture
def fault_gateway(gateway: Gateway, tmp_path: Path) -> Iterator[FaultGateway]:
    """A second gunicorn on the module's database (its configuration is already imported)
    whose Redis is a redis-server of its own, on a spare port."""
    redis_server = shutil.which("redis-server")
    assert redis_server, "redis-server is required for the Redis fault test"
    redis_port = free_port()
    redis_process = subprocess.Popen(
        [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=(tmp_path / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = redis.Redis(port=redis_port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.RedisError:
            assert time.monotonic() < deadline and redis_process.poll() is None, "redis-server did not start"
            time.sleep(0.05)
    client.close()

    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    env = {k: v for k, v in gateway.server.env.items() if k != "CELERY_BROKER_URL"}
    env |= {"PORT": str(free_port()), "PROMETHEUS_MULTIPROC_DIR": str(multiproc), "HOME": str(tmp_path)}
    env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    server = start_gunicorn(env, tmp_path / "gunicorn.log", multiproc)
    try:
        wait_until_up(server, poll_s=0.1)
        yield FaultGateway(server, redis_process)
    finally:
        server.stop()
        if redis_process.poll() is None:
            redis_process.kill()
        redis_process.wait(timeout=5)


def test_redis_killed_while_serving_keeps_answering_uncached_and_readyz_names_redis(
    fault_gateway: FaultGateway, gateway: Gateway
) -> None:
    server, users = fault_gateway.server, gateway.fakes.users
    sub = "redis-fault"
    profile = {"profile": {"id": sub, "name": f"User {sub}", "kind": "profiles"}}

    # Redis up: cached and limited.
    assert server.get("/readyz")[0] == 200
    warmup = [send(server, "GET", f"{BASE}/profile", sub=sub) for _ in range(2)]
    assert [r.headers["x-cache"] for r in warmup] == ["MISS", "HIT"]
    limited = send(server, "GET", f"{BASE}/limited/user", sub=sub)
    assert (limited.status, limited.headers["ratelimit-remaining"]) == (200, "2")

    replies: list[tuple[str, Reply]] = []
    stop = threading.Event()

    def load(path: str) -> None:
        while not stop.is_set():
            replies.append((path, send(server, "GET", BASE + path, sub=sub)))

    threads = [threading.Thread(target=load, args=(path,)) for path in ("/profile", "/profile", "/limited/user")]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    fault_gateway.redis_process.kill()
    fault_gateway.redis_process.wait(timeout=5)
    killed_at = time.monotonic()  # from here on nothing can be answered from Redis
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)

    after = [(path, r) for path, r in replies if r.started > killed_at]
    assert len(after) >= 10, f"only {len(after)} requests were served after the kill"
    # Before the kill the user limit (3 per minute) is enforced: 429s are expected there.
    # From the kill on, every answer is the full 200: no 5xx, no 429 (limits fail open).
    unexpected = [
        (path, r.status, r.raw[:200])
        for path, r in replies
        if r.status != 200 and not (path == "/limited/user" and r.status == 429 and r.started < killed_at)
    ]
    assert not unexpected, unexpected
    for path, reply in replies:
        if reply.status == 429:
            assert_envelope(reply, 429, "RATE_LIMITED")
        elif path == "/profile":
            assert reply.json() == profile
        else:
            assert reply.json() == {"pong": True, "user": sub}
    for path, reply in after:
        assert reply.headers.get("x-cache", "MISS") == "MISS", (path, reply.headers)
        assert not rate_headers(reply), (path, reply.headers)  # limits fail open, no stale headers
    limited_after = [r for path, r in after if path == "/limited/user"]
    assert len(limited_after) > 3  # well past the 3-per-minute limit, all admitted
    # Every MISS ran the plan (one downstream call each); every HIT was served from Redis.
    misses = sum(1 for r in warmup if r.headers["x-cache"] == "MISS")
    misses += sum(1 for path, r in replies if path == "/profile" and r.headers["x-cache"] == "MISS")
    assert users.hits[f"/profiles/{sub}"] == misses

    status, _, raw = server.get("/readyz")
    assert status == 503, raw
    ready = json.loads(raw)
    assert ready["checks"] == {"database": "ok", "redis": "unreachable"}
    assert ready["failing"] == ["redis"]
    assert server.get("/healthz")[0] == 200
    # The gateway's own log agrees: no aggregate request answered 5xx, nothing unhandled.
    served_5xx = re.compile(rf"{re.escape(BASE)}/\S+ 5\d\d\b")
    assert not [line for line in server.log_lines() if served_5xx.search(line) or "unhandled error" in line]
