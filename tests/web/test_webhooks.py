"""``POST /webhooks/invalidate``: signed events purge exactly the entries their tags name."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from django.test import Client

from orchestration.edge.cache import ResponseCache
from orchestration.edge.cache_store import InProcessCacheStore
from orchestration.edge.redis_boundary import StoreUnavailable
from orchestration.edge.webhook_signature import sign
from orchestration.plan import CachePolicy, Endpoint, InvalidationRule
from orchestration.tasks import purge_cache_tags
from orchestration.templates import compile_template
from orchestration.web import edge
from tests.web.conftest import CATALOG, Gateway, auth, make_plan

SECRET = "webhook-secret-for-tests-0123456789"
PROFILE = Endpoint(
    name="profile",
    method="GET",
    path="/profile",
    calls=(),
    response=compile_template({}),
    cache=CachePolicy(
        ttl_s=60,
        scope="user",
        tags=(compile_template("user:{{ user.sub }}"),),
        invalidate_on=(InvalidationRule("user.updated", (compile_template("user:{{ event.userId }}"),)),),
    ),
)


@pytest.fixture
def served(gateway: Gateway, settings: Any) -> Gateway:
    settings.GATEWAY = {**settings.GATEWAY, "WEBHOOK_SECRET": SECRET}
    gateway.install(make_plan(PROFILE, CATALOG))
    client = gateway.client()
    for user in ("alice", "bob"):
        assert client.get("/v1/profile", **auth(user))["X-Cache"] == "MISS"
    assert client.get("/v1/catalog", **auth("alice"))["X-Cache"] == "MISS"
    return gateway


def post(payload: Any, *, signature: str | None = None, raw: bytes | None = None) -> Any:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {} if signature == "" else {"HTTP_X_GATEWAY_SIGNATURE": signature or sign(body, SECRET)}
    return Client().post("/webhooks/invalidate", data=body, content_type="application/json", **headers)


def cache_states() -> dict[str, str]:
    client = Client()
    return {
        "alice": client.get("/v1/profile", **auth("alice"))["X-Cache"],
        "bob": client.get("/v1/profile", **auth("bob"))["X-Cache"],
        "catalog": client.get("/v1/catalog", **auth("bob"))["X-Cache"],
    }


def test_signed_event_purges_exactly_the_entries_its_tags_render(served: Gateway) -> None:
    response = post({"event": "user.updated", "data": {"userId": "alice"}})
    assert response.status_code == 202
    assert response.json()["taskId"]
    assert cache_states() == {"alice": "MISS", "bob": "HIT", "catalog": "HIT"}


def test_signed_tags_purge_those_tags(served: Gateway) -> None:
    assert post({"tags": ["catalog"]}).status_code == 202
    assert cache_states() == {"alice": "HIT", "bob": "HIT", "catalog": "MISS"}


def test_an_event_no_rule_listens_to_purges_nothing(served: Gateway) -> None:
    assert post({"event": "order.created", "data": {"userId": "alice"}}).status_code == 202
    assert cache_states() == {"alice": "HIT", "bob": "HIT", "catalog": "HIT"}


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=" + "0" * 64, "deadbeef", sign(b"another body", SECRET), sign(b"{}", "wrong-secret")],
    ids=["missing", "zeros", "no-prefix", "other-body", "other-secret"],
)
def test_bad_signature_is_401_and_purges_nothing(served: Gateway, signature: str) -> None:
    response = post({"tags": ["catalog", "user:alice", "user:bob"]}, signature=signature)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    assert SECRET not in response.content.decode()
    assert cache_states() == {"alice": "HIT", "bob": "HIT", "catalog": "HIT"}


def test_without_a_configured_secret_every_webhook_is_refused(served: Gateway, settings: Any) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "WEBHOOK_SECRET": ""}
    body = b'{"tags": ["catalog"]}'
    assert post(None, raw=body, signature=sign(body, "")).status_code == 401
    assert cache_states()["catalog"] == "HIT"


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"tags": []}', b'{"tags": [""]}', b'{"tags": "catalog"}', b'{"event": ""}',
     b'{"event": "user.updated", "data": [1]}'],
)  # fmt: skip
def test_signed_but_malformed_payload_is_400(served: Gateway, raw: bytes) -> None:
    response = post(None, raw=raw)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "BAD_REQUEST")


def test_only_post_is_allowed(served: Gateway) -> None:
    response = Client().get("/webhooks/invalidate")
    assert (response.status_code, response["Allow"]) == (405, "POST")


class FlakyStore(InProcessCacheStore):
    """Fails the first purge as if Redis blinked."""

    def __init__(self) -> None:
        super().__init__()
        self.purges = 0

    def purge(self, tags: Sequence[str]) -> int:
        self.purges += 1
        if self.purges == 1:
            raise StoreUnavailable("blink")
        return super().purge(tags)


def test_purge_task_is_retried_on_a_redis_error(installed: None) -> None:
    store = FlakyStore()
    store.put("k", b"{}", ttl_s=60, tags=["catalog"], started_at=0)
    current = edge.installed_edge()
    assert current is not None
    edge.install_edge(edge.Edge(current.limiter, ResponseCache(store), current.client_ips, lambda: make_plan()))
    # As a worker runs it (in-process runs propagate the retry to the view, which answers 503).
    result = purge_cache_tags.apply(args=[{"tags": ["catalog"]}], throw=False)
    assert result.get() == {"tags": ["catalog"], "purged": 1}
    assert store.purges == 2
