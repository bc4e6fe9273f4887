"""``layer.auth.type: session`` (and in a list) through Django's test client with a
real login: who the user is, CSRF on unsafe methods, logout, bad cookies."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client

from orchestration.plan import ClientAuth, Endpoint, JwtSettings, Plan
from orchestration.templates import compile_template
from tests.web.conftest import JWT_ENV, Gateway, Ran, auth, make_plan

ME = Endpoint(name="me", method="GET", path="/me", calls=(), response=compile_template({}))
ORDER = Endpoint(name="order", method="POST", path="/orders", calls=(), response=compile_template({}))

pytestmark = pytest.mark.django_db


def session_plan(*types: str) -> Plan:
    plan = make_plan(ME, ORDER)
    jwt = JwtSettings(algorithms=("HS256",), secret_env=JWT_ENV)
    kinds = types or ("session",)
    client_auth = ClientAuth(type=kinds[0], jwt=jwt, types=tuple(types))  # type: ignore[arg-type]
    return dataclasses.replace(plan, layer=dataclasses.replace(plan.layer, auth=client_auth))


@pytest.fixture
def served(gateway: Gateway) -> Gateway:
    gateway.executor.answers["me"] = lambda context: Ran({"user": dict(context.user)})
    gateway.executor.answers["order"] = lambda context: Ran({"ordered_by": context.user.get("sub")})
    return gateway


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="correct horse battery")


def logged_in(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    assert client.login(username=user.username, password="correct horse battery")
    client.get("/admin/login/")  # a page that sets the csrftoken cookie, as the web app's own pages do
    return client


def error_code(response) -> str:  # type: ignore[no-untyped-def]
    return str(json.loads(response.content)["error"]["code"])


def test_a_logged_in_user_is_the_templates_user(served: Gateway, alice: User) -> None:
    served.install(session_plan())
    response = logged_in(alice).get("/v1/me")
    assert response.status_code == 200, response.content
    assert json.loads(response.content) == {"user": {"sub": str(alice.pk), "username": "alice"}}


def test_without_a_session_or_after_logout_it_is_401(served: Gateway, alice: User) -> None:
    served.install(session_plan())
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.get("/v1/me").status_code == 401
    client = logged_in(alice)
    assert client.get("/v1/me").status_code == 200
    stolen = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.logout()  # the server deletes the session (database and cache)
    client.cookies[settings.SESSION_COOKIE_NAME] = stolen  # the old cookie replayed
    response = client.get("/v1/me")
    assert (response.status_code, error_code(response)) == (401, "UNAUTHENTICATED")
    assert served.executor.runs == {"me": 1}


def test_unsafe_methods_need_the_csrf_token(served: Gateway, alice: User) -> None:
    served.install(session_plan())
    client = logged_in(alice)
    refused = client.post("/v1/orders", data={"sku": 1}, content_type="application/json")
    assert (refused.status_code, error_code(refused)) == (403, "CSRF_FAILED")
    wrong = client.post("/v1/orders", data={}, content_type="application/json", HTTP_X_CSRFTOKEN="x" * 32)
    assert wrong.status_code == 403
    assert served.executor.runs == {}
    token = client.cookies["csrftoken"].value
    accepted = client.post("/v1/orders", data={}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200, accepted.content
    assert json.loads(accepted.content) == {"ordered_by": str(alice.pk)}
    # a form-encoded body is not parsed for the token (and never a 500)
    form = client.post(
        "/v1/orders", data=f"csrfmiddlewaretoken={token}", content_type="application/x-www-form-urlencoded"
    )
    assert form.status_code == 403


def test_a_password_change_ends_the_session(served: Gateway, alice: User) -> None:
    client = logged_in(alice)
    alice.set_password("another password 123")
    alice.save()
    served.install(session_plan())  # a fresh worker view of users (they are kept 5 s per worker)
    assert client.get("/v1/me").status_code == 401


@pytest.mark.parametrize(
    "cookie",
    ["garbage", "", "a" * 5000, "x;y=z", "\x00\x01", "%00%ff", "sessionid", "ok" * 16],
)
def test_any_session_cookie_shape_is_401_never_500(served: Gateway, cookie: str) -> None:
    served.install(session_plan())
    client = Client()
    response = client.get("/v1/me", HTTP_COOKIE=f"sessionid={cookie}")
    assert response.status_code == 401
    assert error_code(response) == "UNAUTHENTICATED"


def test_a_list_of_types_the_first_carried_decides(served: Gateway, alice: User) -> None:
    served.install(session_plan("session", "jwt"))
    assert json.loads(Client().get("/v1/me", **auth("bob")).content)["user"]["sub"] == "bob"  # no cookie: jwt
    client = logged_in(alice)
    both = client.get("/v1/me", **auth("bob"))  # the cookie is carried, so the session decides
    assert json.loads(both.content)["user"] == {"sub": str(alice.pk), "username": "alice"}
    client.logout()
    assert client.get("/v1/me", **auth("bob")).status_code == 200  # logged out: no session cookie, the token decides
    none = Client().get("/v1/me")
    assert (none.status_code, error_code(none)) == (401, "UNAUTHENTICATED")
    assert "session, jwt" in json.loads(none.content)["error"]["message"]


def test_with_cached_db_sessions_a_request_makes_no_database_query(
    served: Gateway, alice: User, django_assert_num_queries
) -> None:  # type: ignore[no-untyped-def]
    if not settings.SESSION_ENGINE.endswith("cached_db"):
        pytest.skip("sessions are in the database without REDIS_URL")
    served.install(session_plan())
    client = logged_in(alice)
    assert client.get("/v1/me").status_code == 200  # reads the user row once
    with django_assert_num_queries(0):
        assert client.get("/v1/me").status_code == 200
