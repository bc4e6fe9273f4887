"""Issue 11 items 3 and 5 through real gunicorn (2 gevent workers), PostgreSQL and Redis:
one user's answer is never served to another, caches other than ours are told to keep
answers behind client auth private, and paths cannot reach a resource the endpoint
does not name (a path hole with no value is a 400, a client ``..`` segment a 404),
with the fake services' hit counts showing what was (not) called."""

from __future__ import annotations

import http.client
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
import yaml

from tests.e2e.client import HttpReply, user_token
from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.support.fake_downstream import FakeDownstream

pytestmark = pytest.mark.e2e

JWT_SECRET = "isolation-e2e-jwt-secret-with-enough-bytes"
BASE = "/v1/iso"


@dataclass
class Fakes:
    accounts: FakeDownstream  # answers for whoever's token it is given (bearer_forward)
    catalog: FakeDownstream  # the same answer for everyone
    carts: FakeDownstream  # /carts/<id>


def _account(handler: Any) -> tuple[int, Any]:
    """The account of the token's owner: the service trusts the token it is given."""
    token = handler.headers.get("Authorization", "").removeprefix("Bearer ")
    owner = jwt.decode(token, options={"verify_signature": False})["sub"] if token else None
    return (200, {"owner": owner, "iban": f"XX-{owner}"}) if owner else (401, {"error": "no token"})


@pytest.fixture(scope="module")
def fakes(module_fake_downstream: Callable[[dict[str, Any]], FakeDownstream]) -> Fakes:
    return Fakes(
        accounts=module_fake_downstream({"/account": _account}),
        catalog=module_fake_downstream({"/products": (200, {"products": ["a", "b"]})}),
        carts=module_fake_downstream({"*": (200, {"items": [1, 2]})}),
    )


def _service(url: str, auth: str = "none") -> dict[str, Any]:
    return {"base_url": url, "timeout_ms": 2000, "auth": {"type": auth}, "retry": {"max_retries": 0}}


def _endpoint(name: str, method: str, path: str, call: dict[str, Any], response: Any, **cache: Any) -> dict[str, Any]:
    return {
        "name": name,
        "method": method,
        "path": path,
        "cache": cache or {"ttl_s": 0},
        "calls": [{"stage": 1, "method": "GET", **call}],
        "response": response,
    }


def config(fakes: Fakes) -> dict[str, Any]:
    return {
        "version": 1,
        "layer": {
            "name": "Isolation e2e",
            "base_path": BASE,
            "auth": {"type": "jwt", "jwt": {"algorithms": ["HS256"], "secret_env": "GATEWAY_JWT_SECRET"}},
        },
        "services": {
            "accounts": _service(fakes.accounts.url, "bearer_forward"),
            "catalog": _service(fakes.catalog.url),
            "carts": _service(fakes.carts.url),
        },
        "endpoints": [
            _endpoint(
                "account",
                "GET",
                "/account",
                {"id": "account", "service": "accounts", "path": "/account"},
                {"account": "{{ account }}"},
                ttl_s=60,
                scope="user",
            ),
            _endpoint(
                "catalog",
                "GET",
                "/catalog",
                {"id": "catalog", "service": "catalog", "path": "/products"},
                {"catalog": "{{ catalog.products }}"},
                ttl_s=60,
                scope="shared",
            ),
            _endpoint(
                "cart",
                "POST",
                "/cart",
                {"id": "cart", "service": "carts", "path": "/carts/{{ request.body.cartId }}"},
                {"items": "{{ cart.items }}"},
            ),
            _endpoint(
                "cart-view",
                "GET",
                "/carts/{cart_id}",
                {"id": "cart", "service": "carts", "path": "/carts/{{ request.path.cart_id }}"},
                {"items": "{{ cart.items }}"},
            ),
        ],
    }


@pytest.fixture(scope="module")
def server(module_gateway_server: Callable[..., GatewayServer], fakes: Fakes) -> GatewayServer:
    database, redis_db = isolated_targets("isolation", 14)
    document = yaml.safe_dump(config(fakes), sort_keys=False)
    env = {"GATEWAY_JWT_SECRET": JWT_SECRET}
    return module_gateway_server(document, env, workers=2, database=database, redis_db=redis_db)


def send(
    server: GatewayServer, method: str, path: str, sub: str | None = "alice", body: bytes | None = None
) -> HttpReply:
    """One request as written (no client-side path normalisation), on a new connection."""
    headers = {"Authorization": f"Bearer {user_token(sub, JWT_SECRET)}"} if sub else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    parts = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return HttpReply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def assert_envelope(reply: HttpReply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, reply.raw
    body = reply.json()
    assert set(body) == {"error", "data"} and body["data"] == {}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["requestId"] == reply.headers["x-request-id"]
    assert reply.headers["cache-control"] == "no-store"
    return dict(body["error"])


def max_age(reply: HttpReply, visibility: str) -> int:
    found = re.fullmatch(rf"{visibility}, max-age=(\d+)", reply.headers["cache-control"])
    assert found, reply.headers["cache-control"]
    return int(found.group(1))


def test_users_with_their_own_tokens_get_their_own_answers_kept_private(server: GatewayServer, fakes: Fakes) -> None:
    replies = {sub: [send(server, "GET", f"{BASE}/account", sub) for _ in range(3)] for sub in ("alice", "bob")}
    for sub, answers in replies.items():
        expected = {"account": {"owner": sub, "iban": f"XX-{sub}"}}
        assert [(r.status, r.json()) for r in answers] == [(200, expected)] * 3
        assert [r.headers["x-cache"] for r in answers] == ["MISS", "HIT", "HIT"]
        assert answers[0].headers["cache-control"] == "private, max-age=60"
        assert all(55 <= max_age(r, "private") <= 60 for r in answers[1:])
    # One call per user, each with that user's own token: nothing crossed over.
    assert fakes.accounts.hits["/account"] == 2
    sent = [h["authorization"].removeprefix("Bearer ") for h in fakes.accounts.headers["/account"]]
    owners = [jwt.decode(t, JWT_SECRET, algorithms=["HS256"])["sub"] for t in sent]
    assert owners == ["alice", "bob"]


def test_a_shared_entry_behind_client_auth_is_shared_by_us_and_private_to_others(
    server: GatewayServer, fakes: Fakes
) -> None:
    first, second = send(server, "GET", f"{BASE}/catalog", "carol"), send(server, "GET", f"{BASE}/catalog", "dave")
    assert (first.status, first.json(), first.headers["x-cache"]) == (200, {"catalog": ["a", "b"]}, "MISS")
    assert (second.status, second.json(), second.headers["x-cache"]) == (200, {"catalog": ["a", "b"]}, "HIT")
    assert first.headers["cache-control"] == "private, max-age=60"
    assert max_age(second, "private") <= 60
    assert fakes.catalog.hits["/products"] == 1


@pytest.mark.parametrize("value", ["", None, ".", ".."])
def test_a_path_hole_with_no_segment_value_is_a_400_and_calls_nothing(
    server: GatewayServer, fakes: Fakes, value: Any
) -> None:
    before = sum(fakes.carts.hits.values())
    body = ('{"cartId": %s}' % ("null" if value is None else f'"{value}"')).encode()
    error = assert_envelope(send(server, "POST", f"{BASE}/cart", body=body), 400, "BAD_REQUEST")
    assert "Call 'cart'" in error["message"]
    assert sum(fakes.carts.hits.values()) == before


@pytest.mark.parametrize("path", ["/carts/..", "/carts/.", "/carts/%2e%2e", "/carts/%2E", "/./carts/c-1"])
def test_a_client_path_with_a_dot_segment_is_a_404_and_calls_nothing(
    server: GatewayServer, fakes: Fakes, path: str
) -> None:
    before = sum(fakes.carts.hits.values())
    assert_envelope(send(server, "GET", BASE + path), 404, "NOT_FOUND")
    assert sum(fakes.carts.hits.values()) == before


def test_an_ordinary_cart_is_still_served(server: GatewayServer, fakes: Fakes) -> None:
    reply = send(server, "GET", f"{BASE}/carts/c-1")
    assert (reply.status, reply.json()) == (200, {"items": [1, 2]})
    assert fakes.carts.hits["/carts/c-1"] >= 1


def test_import_refuses_a_shared_entry_that_forwards_the_clients_token(
    server: GatewayServer, fakes: Fakes, tmp_path: Path
) -> None:
    document = config(fakes)
    document["endpoints"][0]["cache"]["scope"] = "shared"
    bad = tmp_path / "shared.yaml"
    bad.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    result = server.manage("gateway", "import", str(bad), check=False)
    assert result.returncode == 1
    assert (
        "endpoints[0].cache.scope: a shared entry would serve one user's answer to another: calls[0] sends "
        "the client's credentials to service 'accounts' (auth bearer_forward); use scope: user"
    ) in result.stdout + result.stderr
    # Nothing was imported: the endpoint still keeps each user's answer apart.
    erin = send(server, "GET", f"{BASE}/account", "erin")
    assert (erin.status, erin.json()["account"]["owner"]) == (200, "erin")
    assert erin.headers["cache-control"] == "private, max-age=60"
