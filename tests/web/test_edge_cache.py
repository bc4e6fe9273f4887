"""The response cache as a client sees it through the aggregate view."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.test import Client

from orchestration.errors import Failure, FailureKind, RequiredFailure
from orchestration.plan import CachePolicy, Endpoint
from orchestration.templates import compile_template
from tests.web.conftest import Gateway, Ran, auth, make_plan

RESPONSE = compile_template({})


def endpoint(name: str, path: str, cache: CachePolicy, method: str = "GET") -> Endpoint:
    return Endpoint(name=name, method=method, path=path, calls=(), response=RESPONSE, cache=cache)


PROFILE = endpoint("profile", "/profile", CachePolicy(ttl_s=60, scope="user"))
CATALOG = endpoint("catalog", "/catalog/{section}", CachePolicy(ttl_s=30, scope="shared"))
CHECKOUT = endpoint("checkout", "/checkout", CachePolicy(ttl_s=30, scope="shared"), method="POST")


@pytest.fixture
def served(gateway: Gateway) -> Gateway:
    gateway.install(make_plan(PROFILE, CATALOG, CHECKOUT))
    return gateway


def body(response: Any) -> Any:
    return json.loads(response.content)


def test_miss_then_hit_with_cache_headers(served: Gateway) -> None:
    client = served.client()
    miss = client.get("/v1/catalog/shoes?page=1", **auth("alice"))
    hit = client.get("/v1/catalog/shoes?page=1", **auth("bob"))
    # Shared by our cache, but behind client auth: private to every other cache.
    assert (miss.status_code, miss["X-Cache"], miss["Cache-Control"], miss["Age"]) == (
        200,
        "MISS",
        "private, max-age=30",
        "0",
    )
    assert (hit.status_code, hit["X-Cache"], hit["Age"]) == (200, "HIT", "0")
    assert hit["Cache-Control"] in {"private, max-age=30", "private, max-age=29"}
    assert body(hit) == body(miss) == {"path": {"section": "shoes"}, "user": "alice"}
    assert hit["X-Request-ID"] != miss["X-Request-ID"]
    assert served.executor.runs == {"catalog": 1}


def test_path_parameters_and_query_are_part_of_the_key(served: Gateway) -> None:
    client = served.client()
    for url in ("/v1/catalog/shoes", "/v1/catalog/hats", "/v1/catalog/shoes?page=2", "/v1/catalog/shoes"):
        client.get(url, **auth("alice"))
    assert served.executor.runs == {"catalog": 3}


def test_a_user_scoped_entry_is_never_served_to_another_user(served: Gateway) -> None:
    client = served.client()
    alice = client.get("/v1/profile", **auth("alice"))
    bob = client.get("/v1/profile", **auth("bob"))
    alice_again = client.get("/v1/profile", **auth("alice"))
    assert (alice["X-Cache"], bob["X-Cache"], alice_again["X-Cache"]) == ("MISS", "MISS", "HIT")
    assert (body(bob)["user"], body(alice_again)["user"]) == ("bob", "alice")
    assert alice["Cache-Control"] == "private, max-age=60"


def test_an_error_is_not_cached(served: Gateway) -> None:
    served.executor.answers["profile"] = lambda ctx: Failure((RequiredFailure("svc", FailureKind.FAILURE),), ("svc",))
    client = served.client()
    first = client.get("/v1/profile", **auth("alice"))
    second = client.get("/v1/profile", **auth("alice"))
    assert (first.status_code, first["X-Cache"], first["Cache-Control"]) == (502, "MISS", "no-store")
    assert second.status_code == 502
    assert served.executor.runs == {"profile": 2}


def test_a_partial_response_is_not_cached(served: Gateway) -> None:
    partial = {"user": "alice", "partialData": True, "failedServices": ["svc"]}
    served.executor.answers["profile"] = lambda ctx: Ran(partial, partial=True, failed_services=("svc",))
    client = served.client()
    first = client.get("/v1/profile", **auth("alice"))
    client.get("/v1/profile", **auth("alice"))
    assert (first.status_code, body(first), first["Cache-Control"]) == (200, partial, "no-store")
    assert served.executor.runs == {"profile": 2}


def test_ten_concurrent_misses_run_the_plan_once(served: Gateway) -> None:
    served.executor.delay_s = 0.15
    barrier = threading.Barrier(10)
    answers: list[tuple[int, str, Any]] = []

    def one_client() -> None:
        barrier.wait()
        response = Client().get("/v1/catalog/shoes", **auth("alice"))
        answers.append((response.status_code, response["X-Cache"], body(response)))

    threads = [threading.Thread(target=one_client) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert served.executor.runs == {"catalog": 1}
    assert sorted(a[1] for a in answers) == ["HIT"] * 9 + ["MISS"]
    assert {json.dumps(a[2]) for a in answers} == {json.dumps({"path": {"section": "shoes"}, "user": "alice"})}
    assert {a[0] for a in answers} == {200}


def test_head_is_served_from_the_cache(served: Gateway) -> None:
    client = served.client()
    client.get("/v1/catalog/shoes", **auth("alice"))
    head = client.head("/v1/catalog/shoes", **auth("alice"))
    assert (head.status_code, head["X-Cache"]) == (200, "HIT")
    assert served.executor.runs == {"catalog": 1}


def test_post_endpoints_are_never_cached(served: Gateway) -> None:
    client = served.client()
    responses = [client.post("/v1/checkout", data="{}", content_type="application/json", **auth("a")) for _ in "ab"]
    assert [r.status_code for r in responses] == [200, 200]
    assert not responses[0].has_header("X-Cache")
    assert responses[0]["Cache-Control"] == "no-store"
    assert served.executor.runs == {"checkout": 2}


def test_uncached_get_endpoints_say_no_store(gateway: Gateway) -> None:
    gateway.install(make_plan(endpoint("live", "/live", CachePolicy(ttl_s=0))))
    response = gateway.client().get("/v1/live", **auth("alice"))
    assert (response.status_code, response["Cache-Control"], response.has_header("X-Cache")) == (200, "no-store", False)


@pytest.mark.django_db
def test_a_cache_hit_makes_no_database_query(served: Gateway, django_assert_num_queries: Any) -> None:
    client = served.client()
    client.get("/v1/catalog/shoes", **auth("alice"))
    with django_assert_num_queries(0):
        assert client.get("/v1/catalog/shoes", **auth("alice"))["X-Cache"] == "HIT"
