"""Nothing the edge answers shows a downstream base URL or a secret."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from orchestration.edge.webhook_signature import sign
from orchestration.errors import Failure, FailureKind, RequiredFailure
from orchestration.plan import CachePolicy, Endpoint, RateLimitRule
from orchestration.templates import compile_template
from tests.web.conftest import BASE_URL, JWT_SECRET, Gateway, auth, make_plan

SECRET = "hardening-webhook-secret-0123456789"


def visible(response: Any) -> str:
    return response.content.decode() + json.dumps(dict(response.items()))


def test_edge_answers_leak_no_base_url_or_secret(gateway: Gateway, settings: Any) -> None:
    settings.GATEWAY = {**settings.GATEWAY, "WEBHOOK_SECRET": SECRET}
    cached = Endpoint("cached", "GET", "/cached", (), compile_template({}), cache=CachePolicy(ttl_s=60))
    failing = Endpoint("failing", "GET", "/failing", (), compile_template({}), cache=CachePolicy(ttl_s=60))
    gateway.install(make_plan(cached, failing, rate_limits=(RateLimitRule("user", 3, 60),)))
    gateway.executor.answers["failing"] = lambda ctx: Failure((RequiredFailure("svc", FailureKind.FAILURE),), ("svc",))
    client = Client()
    answers = [
        client.get("/v1/cached", **auth("alice")),
        client.get("/v1/cached", **auth("alice")),
        client.get("/v1/failing", **auth("alice")),
        client.get("/v1/failing", **auth("alice")),  # 429
        client.get("/v1/cached", HTTP_AUTHORIZATION="Bearer forged"),
        client.post("/webhooks/invalidate", data=b"{}", content_type="application/json"),
        client.post(
            "/webhooks/invalidate",
            data=b"nope",
            content_type="application/json",
            HTTP_X_GATEWAY_SIGNATURE=sign(b"nope", SECRET),
        ),
    ]
    assert [a.status_code for a in answers] == [200, 200, 502, 429, 401, 401, 400]
    for answer in answers:
        text = visible(answer)
        assert BASE_URL not in text and "10.9.8.7" not in text
        assert SECRET not in text and JWT_SECRET not in text
