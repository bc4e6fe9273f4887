"""Issue 3, end to end: aggregate endpoints served by real gunicorn (2 gevent workers)
on PostgreSQL and Redis, against the demo simulator and fake services on loopback.

One gateway serves the whole module: a copy of ``examples/checkout.yaml`` pointed at
the simulator, plus probe services and endpoints (``/v1/checkout/probe/...``) for the
breaker, the bulkhead, a dead service and a config change. Which worker answered a
request is read from the per-process Prometheus files (``counter_<pid>.db``), so the
shared-state tests can show that *both* workers took part.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import yaml

from tests.checkout_expectations import MISSION_SUMMARY
from tests.e2e.client import HttpReply, user_token
from tests.e2e.conftest import ROOT, GatewayServer, isolated_targets
from tests.support.fake_downstream import FakeDownstream, free_port
from tests.support.simulator import load_simulator

pytestmark = pytest.mark.e2e

JWT_SECRET = "serving-e2e-secret-with-enough-bytes-for-hs256"
MAX_BODY_BYTES = 4096
SLOW_S = 1.5
CRITICAL_PATH_MS = 45 + max(80, 35, 120) + 60  # cart, then inventory/pricing/shipping, then tax
BASE = "/v1/checkout"
W3C_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")

# ---------------------------------------------------------------------------
# The module's gateway and the services it calls
# ---------------------------------------------------------------------------


class _Records(logging.Handler):
    """What the simulator logged: one record per request it answered."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) == 7:
            service, method, path, status, _ms, request_id, traceparent = args
            self.seen.append(
                {"service": service, "method": method, "path": path, "status": status}
                | {"request_id": request_id, "traceparent": traceparent}
            )


@dataclass
class Simulator:
    module: ModuleType
    main: Any  # every service but shipping
    shipping: Any  # shipping alone, so it can be stopped
    shipping_port: int
    records: _Records

    def url(self, service: str) -> str:
        if service == "shipping":
            return f"http://127.0.0.1:{self.shipping_port}"
        return str(self.main.url(service))

    def start_shipping(self) -> None:
        self.shipping = self.module.start_in_thread({"shipping": self.shipping_port}, only=["shipping"])


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    module = load_simulator()
    records = _Records()
    logger = logging.getLogger("simulator")
    previous = logger.level, logger.propagate
    logger.setLevel(logging.INFO)
    logger.propagate = False  # recorded here, not printed through the root logger
    logger.addHandler(records)
    others = {name: 0 for name in module.SERVICE_NAMES if name != "shipping"}
    main = module.start_in_thread(others, without=["shipping"], latency_scale=1.0)
    shipping = module.start_in_thread({"shipping": 0}, only=["shipping"], latency_scale=1.0)
    handle = Simulator(module, main, shipping, shipping.ports["shipping"], records)
    yield handle
    handle.shipping.stop()
    main.stop()
    logger.removeHandler(records)
    logger.setLevel(previous[0])
    logger.propagate = previous[1]


@dataclass
class Fakes:
    flaky: FakeDownstream  # always 500
    slow: FakeDownstream  # answers after SLOW_S
    fast: FakeDownstream  # answers at once
    dead_url: str  # nothing listens there


@pytest.fixture(scope="module")
def fakes(module_fake_downstream: Callable[[dict[str, Any]], FakeDownstream]) -> Fakes:
    def slow_answer(_handler: Any) -> tuple[int, Any]:
        time.sleep(SLOW_S)
        return 200, {"slept": SLOW_S}

    return Fakes(
        flaky=module_fake_downstream({"*": (500, {"error": "flaky is down"})}),
        slow=module_fake_downstream({"/slow": slow_answer}),
        fast=module_fake_downstream({"/fast": (200, {"ok": True, "value": 7})}),
        dead_url=f"http://127.0.0.1:{free_port()}",
    )


def _service(base_url: str, **policies: Any) -> dict[str, Any]:
    return {
        "base_url": base_url,
        "owner": "Serving e2e",
        "avg_latency_ms": 10,
        "sla": 99.0,
        "timeout_ms": 1000,
        "auth": {"type": "none"},
        "breaker": {"failure_threshold": 50, "window_s": 60, "open_s": 30, "half_open_probes": 1},
        "retry": {"max_retries": 0, "backoff": "none", "base_ms": 100, "jitter": False, "retry_on": []},
        "bulkhead": {"max_concurrent": 100, "max_wait_ms": 0},
        **policies,
    }


def _probe(name: str, path: str, calls: list[dict[str, Any]], response: Any, timeout_ms: int = 2000) -> dict[str, Any]:
    return {
        "name": name,
        "method": "GET",
        "path": path,
        "purpose": f"serving e2e: {name}",
        "timeout_ms": timeout_ms,
        "cache": {"ttl_s": 0},
        "calls": [{"stage": 1, "method": "GET", **call} for call in calls],
        "response": response,
    }


def serving_config(sim: Simulator, fakes: Fakes, *, version_label: str = "v1") -> str:
    """examples/checkout.yaml with the simulator's URLs, plus the probe services and endpoints."""
    document = yaml.safe_load((ROOT / "examples" / "checkout.yaml").read_text(encoding="utf-8"))
    for name, service in document["services"].items():
        service["base_url"] = sim.url(name)
    document["services"].update(
        flaky=_service(
            fakes.flaky.url,
            timeout_ms=500,
            breaker={"failure_threshold": 2, "window_s": 60, "open_s": 60, "half_open_probes": 1},
        ),
        slow=_service(fakes.slow.url, timeout_ms=3000, bulkhead={"max_concurrent": 1, "max_wait_ms": 0}),
        fast=_service(fakes.fast.url),
        dead=_service(fakes.dead_url, timeout_ms=500),
    )
    document["endpoints"] += [
        _probe(
            "probe-breaker",
            "/probe/breaker",
            [{"id": "flaky", "service": "flaky", "path": "/flaky", "required": True, "timeout_ms": 500}],
            {"flaky": "{{ flaky }}"},
        ),
        _probe(
            "probe-bulkhead",
            "/probe/bulkhead",
            [
                {"id": "fast", "service": "fast", "path": "/fast", "required": True, "timeout_ms": 1000},
                {
                    "id": "slow",
                    "service": "slow",
                    "path": "/slow",
                    "required": False,
                    "timeout_ms": 3000,
                    "fallback": None,
                },
            ],
            {"fast": "{{ fast }}", "slow": "{{ slow }}"},
            timeout_ms=4000,
        ),
        _probe(
            "probe-version",
            "/probe/version",
            [{"id": "fast", "service": "fast", "path": "/fast", "required": True, "timeout_ms": 1000}],
            {"version": version_label, "value": "{{ fast.value }}"},
        ),
        _probe(
            "probe-dead",
            "/probe/dead/{item_id}",
            [
                {
                    "id": "dead",
                    "service": "dead",
                    "path": "/items/{{ request.path.item_id }}",
                    "required": True,
                    "timeout_ms": 500,
                }
            ],
            {"item": "{{ dead }}"},
        ),
    ]
    return yaml.safe_dump(document, sort_keys=False)


@dataclass
class Gateway:
    server: GatewayServer
    sim: Simulator
    fakes: Fakes
    internal_urls: tuple[str, ...]  # host:port of every downstream: never in a client body


@pytest.fixture(scope="module")
def gateway(module_gateway_server: Callable[..., GatewayServer], sim: Simulator, fakes: Fakes) -> Gateway:
    database, redis_db = isolated_targets("serving", 5)
    server = module_gateway_server(
        serving_config(sim, fakes),
        {"GATEWAY_JWT_SECRET": JWT_SECRET, "GATEWAY_MAX_BODY_BYTES": str(MAX_BODY_BYTES)},
        workers=2,
        database=database,
        redis_db=redis_db,
    )
    urls = [sim.url(name) for name in sim.module.SERVICE_NAMES]
    urls += [fakes.flaky.url, fakes.slow.url, fakes.fast.url, fakes.dead_url]
    return Gateway(server, sim, fakes, tuple(urlsplit(url).netloc for url in urls))


# ---------------------------------------------------------------------------
# Talking to it
# ---------------------------------------------------------------------------


def token(sub: str = "42") -> str:
    return user_token(sub, JWT_SECRET)


@dataclass
class Reply(HttpReply):
    elapsed_s: float


def send(
    gw: Gateway,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    chunks: list[bytes] | None = None,
    sub: str | None = "42",
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """One request on a new connection; checks what every response must satisfy."""
    all_headers = dict(headers or {})
    if sub is not None:
        all_headers["Authorization"] = f"Bearer {token(sub)}"
    payload: Any = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    if chunks is not None:  # Transfer-Encoding: chunked, no Content-Length
        payload = iter(chunks)
    if payload is not None:
        all_headers.setdefault("Content-Type", "application/json")
    parts = urlsplit(gw.server.base_url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=15)
    started = time.perf_counter()
    try:
        connection.request(method, path, body=payload, headers=all_headers, encode_chunked=chunks is not None)
        response = connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        reply = Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data, elapsed)
    finally:
        connection.close()
    assert reply.headers.get("x-request-id"), f"{method} {path}: no X-Request-ID"
    text = reply.raw.decode("utf-8", errors="replace")
    assert "Traceback" not in text and 'File "' not in text, f"{method} {path}: traceback in body: {text[:500]}"
    for netloc in gw.internal_urls:
        assert netloc not in text, f"{method} {path}: internal URL {netloc} in body: {text[:500]}"
    return reply


def send_concurrently(gw: Gateway, count: int, method: str, path: str, **kwargs: Any) -> list[Reply]:
    """``count`` requests released together from threads."""
    barrier = threading.Barrier(count)

    def one() -> Reply:
        barrier.wait(timeout=10)
        return send(gw, method, path, **kwargs)

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(one) for _ in range(count)]
        return [future.result(timeout=30) for future in futures]


def per_worker(server: GatewayServer, metric: str, **labels: str) -> dict[int, float]:
    """A counter's value per gunicorn worker, from the Prometheus multiprocess files."""
    from prometheus_client.mmap_dict import MmapedDict

    values: dict[int, float] = {}
    for path in Path(server.multiproc_dir).glob("counter_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        for attempt in range(3):
            try:
                entries = list(MmapedDict.read_all_values_from_file(str(path)))  # type: ignore[no-untyped-call]
                break
            except RuntimeError:  # caught mid-write: read again
                if attempt == 2:
                    raise
                time.sleep(0.05)
        for key, value, _timestamp, _pos in entries:
            _family, name, key_labels, _help = json.loads(key)
            if name == metric and all(key_labels.get(k) == v for k, v in labels.items()):
                values[pid] = values.get(pid, 0.0) + value
    return values


def served_by(server: GatewayServer, endpoint: str) -> dict[int, float]:
    return per_worker(server, "gateway_requests_total", endpoint=endpoint)


def assert_envelope(reply: Reply, status: int, code: str, failed: list[str] | None = None) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    assert reply.headers["content-type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"error", "data"} and body["data"] == {}
    error: dict[str, Any] = body["error"]
    assert set(error) >= {"code", "message", "failedServices", "partialData", "requestId"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error["failedServices"] == (failed or [])
    assert error["partialData"] is False
    assert error["requestId"] == reply.headers["x-request-id"]
    return error


# ---------------------------------------------------------------------------
# 1. The checkout example
# ---------------------------------------------------------------------------


def test_checkout_summary_serves_the_missions_body_with_request_id_and_traceparent(gateway: Gateway) -> None:
    records = gateway.sim.records
    reply = send(gateway, "POST", f"{BASE}/summary", body={"cartId": "c-1001"}, headers={"X-Request-ID": "chk-1"})

    assert reply.status == 200, reply.raw
    assert reply.json() == MISSION_SUMMARY
    assert reply.headers["x-request-id"] == "chk-1"
    seen = [record for record in records.seen if record["request_id"] == "chk-1"]
    # Each service saw the client's id (once, unless a slow moment on this shared machine made a retry).
    assert {r["service"] for r in seen} == {"cart", "inventory", "pricing", "shipping", "tax"}
    trace_ids = set()
    for record in seen:
        match = W3C_TRACEPARENT.match(record["traceparent"])
        assert match, f"{record['service']} got traceparent {record['traceparent']!r}"
        trace_ids.add(match.group(1))
    assert len(trace_ids) == 1  # one trace across the five downstream calls

    # The demo's latency against its critical path (cart, the slowest of stage 2, tax), measured
    # once both workers have served a request (a worker's first request builds its runtime).
    cold = [reply.elapsed_s * 1000]
    while len(served_by(gateway.server, "checkout-summary")) < 2 and len(cold) < 10:
        warm_up = send(gateway, "POST", f"{BASE}/summary", body={"cartId": "c-1001"})
        assert warm_up.status == 200 and warm_up.json() == MISSION_SUMMARY
        cold.append(warm_up.elapsed_s * 1000)
    latencies = []
    for _ in range(10):
        again = send(gateway, "POST", f"{BASE}/summary", body={"cartId": "c-1001"})
        assert again.status == 200 and again.json() == MISSION_SUMMARY
        latencies.append(again.elapsed_s * 1000)
    median = statistics.median(latencies)
    print(
        f"\n[serving e2e] checkout summary over 10 requests: median {median:.0f} ms, "
        f"min {min(latencies):.0f} ms, max {max(latencies):.0f} ms; critical path {CRITICAL_PATH_MS} ms "
        f"(warm-up requests: {', '.join(f'{ms:.0f}' for ms in cold)} ms)"
    )
    assert median >= CRITICAL_PATH_MS * 0.9  # stages really run after one another
    assert median < 2000  # very generous: the endpoint's own deadline


def test_checkout_summary_without_shipping_is_partial(gateway: Gateway) -> None:
    sim = gateway.sim
    sim.shipping.stop()
    try:
        reply = send(gateway, "POST", f"{BASE}/summary", body={"cartId": "c-1001"})
    finally:
        sim.start_shipping()

    assert reply.status == 200, reply.raw
    assert reply.json() == {**MISSION_SUMMARY, "shipping": None, "partialData": True, "failedServices": ["shipping"]}


def test_checkout_unknown_cart_is_a_downstream_client_error(gateway: Gateway) -> None:
    reply = send(gateway, "POST", f"{BASE}/summary", body={"cartId": "c-9999"})

    assert_envelope(reply, 404, "DOWNSTREAM_CLIENT_ERROR", ["cart"])


# ---------------------------------------------------------------------------
# 2. A breaker opened through one worker is open in the other
# ---------------------------------------------------------------------------


def test_breaker_opened_in_one_worker_is_open_in_the_other(gateway: Gateway) -> None:
    flaky, server, path = gateway.fakes.flaky, gateway.server, f"{BASE}/probe/breaker"

    opening: list[Reply] = []
    while flaky.hits["/flaky"] < 2 and len(opening) < 5:
        opening.append(send(gateway, "GET", path, sub="breaker-open"))
    assert flaky.hits["/flaky"] == 2
    for reply in opening:
        assert_envelope(reply, 502, "DOWNSTREAM_FAILURE", ["flaky"])
    failures = per_worker(server, "gateway_downstream_attempts_total", service="flaky", outcome="5xx")
    assert sum(failures.values()) == 2
    time.sleep(0.5)  # a worker may trust its own "closed" reply from Redis for up to 0.25 s

    rejected_by: dict[int, float] = {}
    for batch in range(10):  # until both workers have answered with the breaker open
        for reply in send_concurrently(gateway, 4, "GET", path, sub=f"breaker-{batch}"):
            assert_envelope(reply, 502, "CIRCUIT_OPEN", ["flaky"])
        rejected_by = per_worker(server, "gateway_downstream_attempts_total", service="flaky", outcome="circuit_open")
        if len(rejected_by) == 2:
            break
    print(f"\n[serving e2e] breaker: 5xx seen per worker {failures}, circuit_open answered per worker {rejected_by}")
    assert flaky.hits["/flaky"] == 2  # not one more request reached the service
    assert len(rejected_by) == 2, f"only one worker answered: {rejected_by}"
    # Neither worker saw 2 failures of its own, or one saw none: the open state came through Redis.
    assert any(failures.get(pid, 0) < 2 for pid in rejected_by)


# ---------------------------------------------------------------------------
# 3. A full bulkhead fails fast while other services keep answering
# ---------------------------------------------------------------------------


def test_bulkhead_rejection_is_fast_and_the_other_service_answers(gateway: Gateway) -> None:
    slow = gateway.fakes.slow
    before = slow.hits["/slow"]

    replies = send_concurrently(gateway, 3, "GET", f"{BASE}/probe/bulkhead", sub="bulkhead")

    assert all(reply.status == 200 for reply in replies), [r.raw for r in replies]
    bodies = [reply.json() for reply in replies]
    full = [(r, b) for r, b in zip(replies, bodies, strict=True) if "partialData" not in b]
    rejected = [(r, b) for r, b in zip(replies, bodies, strict=True) if "partialData" in b]
    # 3 requests on 2 workers with one slot each: at least one worker got two of them.
    print(
        "\n[serving e2e] bulkhead: rejected in "
        + ", ".join(f"{reply.elapsed_s * 1000:.0f} ms" for reply, _ in rejected)
        + "; served in "
        + ", ".join(f"{reply.elapsed_s * 1000:.0f} ms" for reply, _ in full)
    )
    assert rejected and full, bodies
    for reply, body in rejected:
        assert body == {"fast": {"ok": True, "value": 7}, "slow": None, "partialData": True, "failedServices": ["slow"]}
        assert reply.elapsed_s < SLOW_S * 2 / 3, f"rejected after {reply.elapsed_s:.2f} s"
    for reply, body in full:
        assert body == {"fast": {"ok": True, "value": 7}, "slow": {"slept": SLOW_S}}
        assert reply.elapsed_s >= SLOW_S * 0.95
    assert slow.hits["/slow"] - before == len(full)  # a rejected call never reached the network


# ---------------------------------------------------------------------------
# 5. Errors through the real server
# ---------------------------------------------------------------------------


def test_unknown_path_is_a_404_envelope(gateway: Gateway) -> None:
    assert_envelope(send(gateway, "GET", f"{BASE}/no-such-screen"), 404, "NOT_FOUND")
    assert_envelope(send(gateway, "GET", "/elsewhere", sub=None), 404, "NOT_FOUND")


def test_wrong_method_is_a_405_envelope_with_allow(gateway: Gateway) -> None:
    reply = send(gateway, "GET", f"{BASE}/summary")

    assert_envelope(reply, 405, "METHOD_NOT_ALLOWED")
    assert reply.headers["allow"] == "POST"


def test_invalid_json_is_a_400_envelope(gateway: Gateway) -> None:
    reply = send(gateway, "POST", f"{BASE}/summary", raw=b'{"cartId": "c-1001"')

    assert_envelope(reply, 400, "BAD_REQUEST")


def test_body_over_the_limit_is_a_413_envelope(gateway: Gateway) -> None:
    cart_hits_before = sum(1 for r in gateway.sim.records.seen if r["service"] == "cart")
    body = {"cartId": "c-1001", "padding": "x" * MAX_BODY_BYTES}

    reply = send(gateway, "POST", f"{BASE}/summary", body=body)

    assert_envelope(reply, 413, "PAYLOAD_TOO_LARGE")
    assert sum(1 for r in gateway.sim.records.seen if r["service"] == "cart") == cart_hits_before


def test_a_chunked_body_is_read_and_held_to_the_limit(gateway: Gateway) -> None:
    served = send(gateway, "POST", f"{BASE}/summary", chunks=[b'{"cartId": ', b'"c-1001"}'])
    too_large = send(
        gateway, "POST", f"{BASE}/summary", chunks=[b'{"cartId": "c-1001", "p": "', b"x" * MAX_BODY_BYTES, b'"}']
    )

    assert served.status == 200, served.raw
    assert served.json() == MISSION_SUMMARY
    assert_envelope(too_large, 413, "PAYLOAD_TOO_LARGE")


def test_missing_or_forged_token_is_a_401_envelope(gateway: Gateway) -> None:
    missing = send(gateway, "POST", f"{BASE}/summary", body={"cartId": "c-1001"}, sub=None)
    forged_token = jwt.encode({"sub": "42"}, "not-the-gateway-secret-but-long-enough!!", algorithm="HS256")
    forged = send(
        gateway,
        "POST",
        f"{BASE}/summary",
        body={"cartId": "c-1001"},
        sub=None,
        headers={"Authorization": f"Bearer {forged_token}"},
    )

    assert_envelope(missing, 401, "UNAUTHENTICATED")
    assert_envelope(forged, 401, "UNAUTHENTICATED")


def test_dead_required_service_is_a_502_without_its_address(gateway: Gateway) -> None:
    reply = send(gateway, "GET", f"{BASE}/probe/dead/item-1")  # send() checks no internal URL leaks

    assert_envelope(reply, 502, "DOWNSTREAM_FAILURE", ["dead"])


def test_request_id_is_echoed_when_sane_and_replaced_otherwise(gateway: Gateway) -> None:
    sane = send(gateway, "GET", f"{BASE}/no-such-screen", headers={"X-Request-ID": "client-req.42:a_b-c"})
    insane = send(gateway, "GET", f"{BASE}/no-such-screen", headers={"X-Request-ID": "x" * 300})
    fresh = send(gateway, "GET", f"{BASE}/no-such-screen")

    assert sane.headers["x-request-id"] == "client-req.42:a_b-c"
    assert sane.json()["error"]["requestId"] == "client-req.42:a_b-c"
    assert insane.headers["x-request-id"] != "x" * 300
    assert insane.json()["error"]["requestId"] == insane.headers["x-request-id"]
    assert fresh.headers["x-request-id"] != insane.headers["x-request-id"]


# ---------------------------------------------------------------------------
# 6. /openapi.json
# ---------------------------------------------------------------------------


def test_openapi_lists_the_endpoints_with_their_path_parameters(gateway: Gateway) -> None:
    reply = send(gateway, "GET", "/openapi.json", sub=None)

    assert reply.status == 200
    document = reply.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert set(paths) == {
        f"{BASE}/summary",
        f"{BASE}/dashboard/{{user_id}}",
        f"{BASE}/cart/{{cart_id}}",
        f"{BASE}/probe/breaker",
        f"{BASE}/probe/bulkhead",
        f"{BASE}/probe/version",
        f"{BASE}/probe/dead/{{item_id}}",
    }
    assert set(paths[f"{BASE}/summary"]) == {"post"}
    assert paths[f"{BASE}/summary"]["post"]["parameters"] == []
    dashboard = paths[f"{BASE}/dashboard/{{user_id}}"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in dashboard["parameters"]] == [("user_id", "path", True)]
    dead = paths[f"{BASE}/probe/dead/{{item_id}}"]["get"]
    assert [(p["name"], p["in"]) for p in dead["parameters"]] == [("item_id", "path")]


# ---------------------------------------------------------------------------
# 4. A config change reaches both workers within 2 seconds (last: it re-imports)
# ---------------------------------------------------------------------------


def test_config_change_is_served_by_both_workers_within_2_seconds(gateway: Gateway, tmp_path: Path) -> None:
    server, path = gateway.server, f"{BASE}/probe/version"
    for batch in range(10):  # both workers serve v1 (and hold a runtime) before the change
        for reply in send_concurrently(gateway, 4, "GET", path, sub=f"version-{batch}"):
            assert reply.status == 200 and reply.json() == {"version": "v1", "value": 7}
        if len(served_by(server, "probe-version")) == 2:
            break
    assert len(served_by(server, "probe-version")) == 2

    changed = tmp_path / "changed.yaml"
    changed.write_text(serving_config(gateway.sim, gateway.fakes, version_label="v2"), encoding="utf-8")
    server.manage("gateway", "import", str(changed))
    imported_at = time.monotonic()

    batches = 0
    while True:
        before = served_by(server, "probe-version")
        replies = send_concurrently(gateway, 10, "GET", path, sub=f"version-poll-{batches % 20}")
        after = served_by(server, "probe-version")
        batches += 1
        assert all(reply.status == 200 for reply in replies)
        both_answered = all(after.get(pid, 0) > before.get(pid, 0) for pid in after) and len(after) == 2
        if both_answered and all(reply.json()["version"] == "v2" for reply in replies):
            took = time.monotonic() - imported_at
            break
        assert time.monotonic() - imported_at < 5, "the change did not reach both workers in 5 s"
        time.sleep(0.05)
    print(f"\n[serving e2e] config change served by both workers {took:.2f} s after the import ({batches} batches)")
    assert took < 2.0
    assert all(reply.json() == {"version": "v2", "value": 7} for reply in replies)
