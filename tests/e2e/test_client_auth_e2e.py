"""Issue 15 part A through real gunicorn (2 workers, PostgreSQL, Redis): a layer whose
auth is ``[session, oauth2_introspection]``. A user logs in through the admin's login
page and calls the gateway with the session cookie (CSRF on POST); another client
sends an opaque token checked by a real introspection endpoint on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import GatewayServer, isolated_targets
from tests.support.fake_downstream import FakeDownstream
from tests.support.introspection_server import CLIENT_ID, CLIENT_SECRET, introspection_server

pytestmark = pytest.mark.e2e

CONFIG = """
version: 1
layer:
  name: Auth e2e
  base_path: /v1
  auth:
    type: [session, oauth2_introspection]
    session: {{}}
    oauth2_introspection:
      url: {idp}
      client_id_env: AUTH15_INTRO_ID
      client_secret_env: AUTH15_INTRO_SECRET
      cache_s: 60
services:
  echo: {{base_url: "{echo}"}}
endpoints:
  - name: me
    method: GET
    path: /me
    calls: [{{id: ping, service: echo, stage: 1, method: GET, path: /ping}}]
    response: {{user: "{{{{ user.sub }}}}", username: "{{{{ user.username }}}}", ok: "{{{{ ping.ok }}}}"}}
  - name: order
    method: POST
    path: /orders
    calls: [{{id: ping, service: echo, stage: 1, method: GET, path: /ping}}]
    response: {{orderedBy: "{{{{ user.sub }}}}"}}
"""


def test_session_and_introspection_through_gunicorn(
    gateway_server: Callable[..., GatewayServer], fake_downstream: Callable[..., FakeDownstream]
) -> None:
    echo = fake_downstream({"/ping": (200, {"ok": True})})
    database, redis_db = isolated_targets("auth15", 13)
    with introspection_server() as idp:
        idp.active("opaque-bob", "bob")
        env = {
            "AUTH15_INTRO_ID": CLIENT_ID,
            "AUTH15_INTRO_SECRET": CLIENT_SECRET,
            "DJANGO_SUPERUSER_PASSWORD": "alice-password-123",
        }
        server = gateway_server(CONFIG.format(idp=idp.url, echo=echo.url), env, database=database, redis_db=redis_db)
        server.manage("createsuperuser", "--noinput", "--username", "alice", "--email", "alice@example.com")

        # an opaque token: asked once per worker at most, then remembered (cache_s 60)
        for _ in range(6):
            status, _, body = server.get("/v1/me", headers={"Authorization": "Bearer opaque-bob"})
            assert status == 200 and b'"user":"bob"' in body.replace(b" ", b""), body
        assert 1 <= idp.hits <= 2  # two workers
        status, _, body = server.get("/v1/me", headers={"Authorization": "Bearer opaque-nobody"})
        assert status == 401 and b"UNAUTHENTICATED" in body
        assert server.get("/v1/me")[0] == 401  # no credentials at all

        # a real login through the admin's login page
        with httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=10) as browser:
            page = browser.get("/admin/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert token is not None
            login = browser.post(
                "/admin/login/?next=/admin/",
                data={"csrfmiddlewaretoken": token.group(1), "username": "alice", "password": "alice-password-123"},
            )
            assert login.status_code == 302 and "sessionid" in browser.cookies
            me = browser.get("/v1/me")
            assert me.status_code == 200, me.text
            assert me.json()["username"] == "alice" and me.json()["user"].isdigit()
            refused = browser.post("/v1/orders", json={})
            assert (refused.status_code, refused.json()["error"]["code"]) == (403, "CSRF_FAILED")
            hits_before = echo.hits["/ping"]
            ordered = browser.post("/v1/orders", json={}, headers={"X-CSRFToken": browser.cookies["csrftoken"]})
            assert ordered.status_code == 200 and ordered.json()["orderedBy"] == me.json()["user"]
            assert echo.hits["/ping"] == hits_before + 1
            stolen = browser.cookies["sessionid"]
            browser.post("/admin/logout/", headers={"X-CSRFToken": browser.cookies["csrftoken"]})
            replay = httpx.get(server.base_url + "/v1/me", cookies={"sessionid": stolen}, timeout=10)
            assert replay.status_code == 401  # logged out: the session is gone in every worker
