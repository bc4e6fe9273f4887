"""Gateway rate limits as a client sees them through the aggregate view."""

from __future__ import annotations

import json

from orchestration.errors import Failure, FailureKind, RequiredFailure
from orchestration.plan import Endpoint, RateLimitRule
from orchestration.templates import compile_template
from tests.web.conftest import Gateway, auth, make_plan

PROFILE = Endpoint(name="profile", method="GET", path="/profile", calls=(), response=compile_template({}))
ORDERS = Endpoint(name="orders", method="GET", path="/orders", calls=(), response=compile_template({}))


def rule(scope: str, limit: int, window_s: float = 60) -> RateLimitRule:
    return RateLimitRule(scope=scope, limit=limit, window_s=window_s)  # type: ignore[arg-type]


def test_fourth_request_over_a_user_limit_of_three_is_429_another_user_still_200(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE, rate_limits=(rule("user", 3),)))
    client = gateway.client()
    statuses = [client.get("/v1/profile", **auth("alice")).status_code for _ in range(3)]
    refused = client.get("/v1/profile", **auth("alice"), HTTP_X_REQUEST_ID="req-4")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert refused["Retry-After"] == "20"
    assert (refused["RateLimit-Limit"], refused["RateLimit-Remaining"], refused["RateLimit-Reset"]) == ("3", "0", "60")
    assert json.loads(refused.content)["error"] | {"message": ""} == {
        "code": "RATE_LIMITED",
        "message": "",
        "failedServices": [],
        "partialData": False,
        "requestId": "req-4",
    }
    other = client.get("/v1/profile", **auth("bob"))
    assert (other.status_code, other["RateLimit-Remaining"]) == (200, "2")
    assert gateway.executor.runs == {"profile": 4}


def test_every_admitted_response_carries_ratelimit_headers(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE, rate_limits=(rule("user", 10),)))
    response = gateway.client().get("/v1/profile", **auth("alice"))
    assert (response["RateLimit-Limit"], response["RateLimit-Remaining"], response["RateLimit-Reset"]) == (
        "10",
        "9",
        "6",
    )


def test_error_answers_keep_the_ratelimit_headers(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE, rate_limits=(rule("user", 10),)))
    gateway.executor.answers["profile"] = lambda ctx: Failure((RequiredFailure("svc", FailureKind.FAILURE),), ("svc",))
    response = gateway.client().get("/v1/profile", **auth("alice"))
    assert (response.status_code, response["RateLimit-Remaining"]) == (502, "9")


def test_ip_limit_ignores_x_forwarded_for_from_an_untrusted_peer(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE, rate_limits=(rule("ip", 2),)))
    client = gateway.client()
    statuses = [
        client.get(
            "/v1/profile", **auth(f"user{i}"), REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}"
        ).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert gateway.executor.runs == {"profile": 2}


def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE, rate_limits=(rule("ip", 1),)))
    client = gateway.client()

    def via_proxy(forwarded_for: str) -> int:
        extra = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_FOR": forwarded_for}
        return client.get("/v1/profile", **auth("alice"), **extra).status_code

    assert via_proxy("198.51.100.1") == 200
    assert via_proxy("198.51.100.2") == 200
    assert via_proxy("198.51.100.1") == 429
    assert via_proxy("6.6.6.6, 198.51.100.1") == 429  # a spoofed first hop moves no one to a fresh bucket


def test_global_limit_gives_503_overloaded(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE, rate_limits=(rule("global", 2),)))
    client = gateway.client()
    assert [client.get("/v1/profile", **auth(u)).status_code for u in ("a", "b")] == [200, 200]
    refused = client.get("/v1/profile", **auth("c"))
    assert (refused.status_code, refused["Retry-After"]) == (503, "30")
    assert json.loads(refused.content)["error"]["code"] == "OVERLOADED"


def test_endpoint_rules_count_only_that_endpoint(gateway: Gateway) -> None:
    limited = Endpoint(
        name="profile",
        method="GET",
        path="/profile",
        calls=(),
        response=PROFILE.response,
        rate_limits=(rule("user", 1),),
    )
    gateway.install(make_plan(limited, ORDERS))
    client = gateway.client()
    assert client.get("/v1/profile", **auth("alice")).status_code == 200
    assert client.get("/v1/orders", **auth("alice")).status_code == 200
    assert client.get("/v1/profile", **auth("alice")).status_code == 429


def test_bad_tokens_are_counted_by_ip_and_then_refused_with_429(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE, rate_limits=(rule("ip", 2),)))
    client = gateway.client()
    bad = {"HTTP_AUTHORIZATION": "Bearer nope", "REMOTE_ADDR": "203.0.113.9"}
    assert [client.get("/v1/profile", **bad).status_code for _ in range(3)] == [401, 401, 429]
    assert gateway.executor.runs == {}


def test_limits_are_checked_after_routing_not_for_unknown_paths(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE, rate_limits=(rule("ip", 1),)))
    client = gateway.client()
    assert [client.get("/v1/nope", **auth("alice")).status_code for _ in range(2)] == [404, 404]
    assert client.get("/v1/profile", **auth("alice")).status_code == 200


def test_unlimited_plan_sends_no_ratelimit_headers(gateway: Gateway) -> None:
    gateway.install(make_plan(PROFILE))
    response = gateway.client().get("/v1/profile", **auth("alice"))
    assert response.status_code == 200
    assert not response.has_header("RateLimit-Limit")
    assert not response.has_header("Retry-After")
