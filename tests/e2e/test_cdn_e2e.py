"""The CDN layer end to end (contract section 8, ``cache.cdn: true``): real gunicorn, a
real Celery worker on a Redis broker, real PostgreSQL, a fake catalog service and a
fake CDN purge API on loopback that fails its first tries.

* a ``cdn`` endpoint's answers carry ``public, max-age, s-maxage`` and the entry's tags
  in ``Surrogate-Key`` and ``Cache-Tag`` (percent-encoded), on a MISS and on a HIT;
* an invalidation webhook purges the gateway's cache and POSTs ``{"tags": [...]}`` with
  the bearer token to ``GATEWAY_CDN_PURGE_URL``; the worker retries until the CDN says
  2xx (here: two 503s, then 200).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import yaml

from tests.e2e.conftest import GatewayServer, isolated_targets, process_env
from tests.e2e.test_edge_e2e import (
    JWT_SECRET,
    WEBHOOK_SECRET,
    CeleryWorker,
    _endpoint,
    _service,
    send,
    signed,
)
from tests.support.fake_downstream import FakeDownstream
from tests.support.redis import redis_url_for_db
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

SUFFIX, OFFSET = "cdn15", 14
BASE = "/v1/cdn"
PURGE_TOKEN = "cdn-e2e-purge-token-0123456789"
CDN_FAILURES = 2  # the fake CDN answers 503 to the first purges


def _targets() -> tuple[str, int]:
    return isolated_targets(SUFFIX, OFFSET)


def _broker_url() -> str:
    return redis_url_for_db((_targets()[1] + 1) % 16)


class FakeCdn:
    """A purge API: 503 for the first ``CDN_FAILURES`` POSTs, then 200; records each."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[int, dict[str, Any], str]] = []  # (status, body, authorization)

    def answer(self, handler: Any) -> tuple[int, Any]:
        with self.lock:
            status = 503 if len(self.received) < CDN_FAILURES else 200
            body = json.loads(handler.body or b"null")
            self.received.append((status, body, handler.headers.get("Authorization", "")))
        return status, {"ok": status == 200}


@pytest.fixture(scope="module")
def cdn(module_fake_downstream: Callable[[dict[str, Any]], FakeDownstream]) -> tuple[FakeCdn, FakeDownstream]:
    fake = FakeCdn()
    return fake, module_fake_downstream({"/purge": fake.answer})


@pytest.fixture(scope="module")
def catalog(module_fake_downstream: Callable[[dict[str, Any]], FakeDownstream]) -> FakeDownstream:
    return module_fake_downstream({"*": lambda h: (200, {"sku": h.path.rsplit("/", 1)[-1], "price": 10})})


def _config(catalog: FakeDownstream) -> str:
    document = {
        "version": 1,
        "layer": {
            "name": "CDN e2e",
            "owner": "CDN e2e",
            "base_path": BASE,
            "transport": "rest",
            "auth": {
                "type": "jwt",
                "jwt": {"algorithms": ["HS256"], "secret_env": "GATEWAY_JWT_SECRET", "user_claim": "sub"},
            },
            "rate_limits": [],
        },
        "services": {"catalog": _service(catalog.url)},
        "endpoints": [
            _endpoint(
                "product",
                "/products/{sku}",
                {"id": "product", "service": "catalog", "path": "/products/{{ request.path.sku }}"},
                {"product": "{{ product }}"},
                cache={
                    "ttl_s": 300,
                    "scope": "shared",
                    "cdn": True,
                    "tags": ["catalog", "sku:{{ request.path.sku }}"],
                },
            )
        ],
    }
    return yaml.safe_dump(document, sort_keys=False)


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, cdn: tuple[FakeCdn, FakeDownstream]) -> Iterator[CeleryWorker]:
    database, redis_db = _targets()
    client = redis.Redis.from_url(_broker_url())
    try:
        client.flushdb()
    finally:
        client.close()
    workdir = tmp_path_factory.mktemp("celery-cdn")
    env = {
        **process_env(workdir, database=database, redis_db=redis_db),
        "CELERY_BROKER_URL": _broker_url(),
        "GATEWAY_JWT_SECRET": JWT_SECRET,
        "GATEWAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GATEWAY_CDN_PURGE_URL": cdn[1].url + "/purge",
        "GATEWAY_CDN_PURGE_TOKEN": PURGE_TOKEN,
    }
    started = CeleryWorker.start(workdir, env, name="cdn-e2e")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def gateway(
    worker: CeleryWorker,
    module_gateway_server: Callable[..., GatewayServer],
    catalog: FakeDownstream,
    cdn: tuple[FakeCdn, FakeDownstream],
) -> GatewayServer:
    database, redis_db = _targets()
    server = module_gateway_server(
        _config(catalog),
        {
            "GATEWAY_JWT_SECRET": JWT_SECRET,
            "GATEWAY_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "CELERY_BROKER_URL": _broker_url(),
            "GATEWAY_CDN_PURGE_URL": cdn[1].url + "/purge",
            "GATEWAY_CDN_PURGE_TOKEN": PURGE_TOKEN,
        },
        workers=2,
        database=database,
        redis_db=redis_db,
    )
    worker.wait_ready()
    return server


def _wait_for(found: Callable[[], Any], what: str, worker: CeleryWorker, timeout_s: float = 30.0) -> Any:
    return eventually(found, what, timeout_s, poll_s=0.1, detail=lambda: worker.log()[-3000:])


def test_cdn_headers_then_an_invalidation_purges_us_and_the_cdn_retrying_until_it_succeeds(
    gateway: GatewayServer, worker: CeleryWorker, catalog: FakeDownstream, cdn: tuple[FakeCdn, FakeDownstream]
) -> None:
    fake_cdn = cdn[0]
    path = BASE + "/products/red%20shoe,1"  # a space and a comma: both separators in the tag headers
    miss = send(gateway, "GET", path, sub="alice")
    assert miss.status == 200, miss.raw
    assert miss.json()["product"]["price"] == 10
    assert miss.headers["x-cache"] == "MISS"
    assert miss.headers["cache-control"] == "public, max-age=300, s-maxage=300"
    assert miss.headers["surrogate-key"] == "catalog sku:red%20shoe%2C1"
    assert miss.headers["cache-tag"] == "catalog,sku:red%20shoe%2C1"

    hit = send(gateway, "GET", path, sub="bob")  # another user: one shared entry
    assert (hit.status, hit.headers["x-cache"]) == (200, "HIT")
    assert re.fullmatch(r"public, max-age=(300|299|298), s-maxage=\1", hit.headers["cache-control"])
    assert hit.headers["surrogate-key"] == "catalog sku:red%20shoe%2C1"
    assert hit.headers["cache-tag"] == "catalog,sku:red%20shoe%2C1"
    assert sum(catalog.hits.values()) == 1

    body, signature = signed({"tags": ["catalog"]})
    reply = send(gateway, "POST", "/webhooks/invalidate", raw=body, headers={"X-Gateway-Signature": signature})
    assert reply.status == 202, reply.raw

    # The CDN is asked until it confirms: two 503s, then a 200; each POST the same tags and token.
    received = _wait_for(lambda: [r for r in fake_cdn.received if r[0] == 200], "the CDN purge to succeed", worker)
    assert len(received) == 1
    assert [status for status, _, _ in fake_cdn.received] == [503] * CDN_FAILURES + [200]
    assert all(body == {"tags": ["catalog"]} for _, body, _ in fake_cdn.received)
    assert all(auth == f"Bearer {PURGE_TOKEN}" for _, _, auth in fake_cdn.received)
    log = _wait_for(
        lambda: re.search(r"Task gateway\.purge_cdn_tags\[[^\]]+\] succeeded", worker.log()) and worker.log(),
        "the task's success line",
        worker,
    )
    assert len(re.findall(r"Task gateway\.purge_cdn_tags\[[^\]]+\] retry", log)) == CDN_FAILURES

    # Our own cache was purged first: the next request goes downstream again.
    again = send(gateway, "GET", path, sub="alice")
    assert (again.status, again.headers["x-cache"]) == (200, "MISS")
    assert sum(catalog.hits.values()) == 2
    time.sleep(1.0)
    assert len(fake_cdn.received) == CDN_FAILURES + 1  # no purge after the success
