"""What caches other than ours may keep (contract section 4): ``public`` only for a shared
entry of an endpoint without client auth; and no user entry without a user."""

from __future__ import annotations

import dataclasses

from orchestration.plan import CachePolicy, ClientAuth, Endpoint, Plan
from orchestration.templates import compile_template
from tests.web.conftest import Gateway, auth, make_plan

CATALOG = Endpoint("catalog", "GET", "/catalog", (), compile_template({}), cache=CachePolicy(ttl_s=30, scope="shared"))
PROFILE = Endpoint("profile", "GET", "/profile", (), compile_template({}), cache=CachePolicy(ttl_s=60, scope="user"))


def without_client_auth(plan: Plan) -> Plan:
    return dataclasses.replace(plan, layer=dataclasses.replace(plan.layer, auth=ClientAuth(type="none")))


def test_a_shared_entry_behind_client_auth_is_private_to_other_caches(gateway: Gateway) -> None:
    gateway.install(make_plan(CATALOG))
    client = gateway.client()
    miss, hit = client.get("/v1/catalog", **auth("alice")), client.get("/v1/catalog", **auth("bob"))
    assert (miss.status_code, miss["X-Cache"], miss["Cache-Control"]) == (200, "MISS", "private, max-age=30")
    assert (hit.status_code, hit["X-Cache"]) == (200, "HIT")  # our own cache still shares it
    assert hit["Cache-Control"] in {"private, max-age=30", "private, max-age=29"}
    assert gateway.executor.runs == {"catalog": 1}


def test_a_shared_entry_without_client_auth_is_public(gateway: Gateway) -> None:
    gateway.install(without_client_auth(make_plan(CATALOG)))
    client = gateway.client()
    miss, hit = client.get("/v1/catalog"), client.get("/v1/catalog")
    assert (miss.status_code, miss["X-Cache"], miss["Cache-Control"]) == (200, "MISS", "public, max-age=30")
    assert (hit.status_code, hit["X-Cache"]) == (200, "HIT")
    assert hit["Cache-Control"] in {"public, max-age=30", "public, max-age=29"}
    assert gateway.executor.runs == {"catalog": 1}


def test_a_user_entry_without_client_auth_is_never_stored(gateway: Gateway) -> None:
    """`gateway check` refuses this plan; should one be served anyway, no client's answer
    is kept where another would read it."""
    gateway.install(without_client_auth(make_plan(PROFILE)))
    client = gateway.client()
    answers = [client.get("/v1/profile") for _ in range(2)]
    assert [(a.status_code, a["Cache-Control"], a.has_header("X-Cache")) for a in answers] == [
        (200, "no-store", False)
    ] * 2
    assert gateway.executor.runs == {"profile": 2}
