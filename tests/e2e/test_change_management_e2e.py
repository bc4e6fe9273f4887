"""Issue 12 end to end: the admin REST API through gunicorn (two gevent workers, the
production config file) on a real PostgreSQL, and the admin's versions, diff and
rollback in headless Chromium (screenshots in test-artifacts/).

Behaviour is checked where users see it: after a PUT or a rollback, fresh requests to
the aggregate endpoint answer with the new (or the old again) label on every worker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.conftest import ARTIFACTS, GatewayServer, isolated_targets
from tests.e2e.test_ops_console_browser import CHROMIUM_ARGS, _chromium

pytestmark = pytest.mark.e2e

API = "/api/admin/v1/"
PASSWORD = "changes-e2e-password"
DEADLINE_S = 10.0  # the contract says 2 s; generous for a loaded CI machine


def config(downstream_url: str, label: str) -> dict[str, Any]:
    return {
        "version": 1,
        "layer": {"name": "Changes", "owner": "Platform", "base_path": "/v1/changes", "auth": {"type": "none"}},
        "services": {"probe": {"base_url": downstream_url, "owner": "Probe Team", "timeout_ms": 1000}},
        "endpoints": [
            {
                "name": "label",
                "method": "GET",
                "path": "/label",
                "purpose": "Says which configuration answers",
                "timeout_ms": 2000,
                "calls": [{"id": "probe", "service": "probe", "stage": 1, "method": "GET", "path": "/probe"}],
                "response": {"label": label, "value": "{{ probe.value }}"},
            }
        ],
    }


_SETUP = """
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
admin = User.objects.create_superuser("owner", "owner@example.com", {password!r})
pipeline = User.objects.create_user("pipeline")
codenames = ["view_configrevision", "rollback_configversion", "change_layer"] + [
    f"{{a}}_{{m}}" for a in ("add", "change", "delete") for m in ("service", "endpoint")]
pipeline.user_permissions.set(Permission.objects.filter(content_type__app_label="registry", codename__in=codenames))
reader = User.objects.create_user("reader")
reader.user_permissions.set(Permission.objects.filter(codename="view_configrevision"))
print(Token.objects.create(user=pipeline).key, Token.objects.create(user=reader).key)
"""


@pytest.fixture(scope="module")
def gateway(module_gateway_server: Callable[..., GatewayServer], module_fake_downstream: Any) -> dict[str, Any]:
    probe = module_fake_downstream({"/probe": (200, {"value": 7})})
    database, redis_db = isolated_targets("changes", 9)
    server = module_gateway_server(json.dumps(config(probe.url, "v1")), database=database, redis_db=redis_db)
    pipeline, reader = server.manage("shell", "-c", _SETUP.format(password=PASSWORD)).stdout.splitlines()[-1].split()
    return {"server": server, "probe": probe, "pipeline": pipeline, "reader": reader}


def api(server: GatewayServer, method: str, path: str, token: str | None, body: Any = None, **headers: str) -> Any:
    auth = {"Authorization": f"Token {token}"} if token else {}
    status, response_headers, raw = server.request(method, API + path, body=body, headers={**auth, **headers})
    return status, response_headers, json.loads(raw) if raw else None


def every_worker_serves(server: GatewayServer, label: str) -> None:
    """Until 20 requests in a row (fresh connections, so both workers) answer ``label``."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        labels = [json.loads(server.get("/v1/changes/label")[2]).get("label") for _ in range(20)]
        if labels == [label] * 20:
            return
        time.sleep(0.1)
    raise AssertionError(f"workers still serve {labels}, not only {label!r}")


def test_changes_through_the_api_and_the_admin(gateway: dict[str, Any]) -> None:
    """One test on one gateway: xdist could otherwise start two on the same database."""
    pipeline_put_with_if_match_then_rollback(gateway)
    admin_diff_and_rollback_in_chromium(gateway)


def pipeline_put_with_if_match_then_rollback(gateway: dict[str, Any]) -> None:
    server, token = gateway["server"], gateway["pipeline"]
    every_worker_serves(server, "v1")
    assert api(server, "GET", "config", None)[0] == 401
    assert api(server, "PUT", "config", gateway["reader"], {}, **{"If-Match": '"1"'})[0] == 403

    status, headers, body = api(server, "GET", "config", token)
    assert status == 200 and headers["ETag"] == f'"{body["version"]}"'
    start, document = body["version"], body["config"]
    edited = json.loads(json.dumps(document))
    edited["endpoints"][0]["response"]["label"] = "v2"

    status, _, diff = api(server, "POST", "config/diff", token, edited)
    assert status == 200 and diff["changed"] is True and "-      label: v1\n+      label: v2\n" in diff["diff"]
    assert api(server, "PUT", "config", token, edited)[0] == 428
    bad = json.loads(json.dumps(edited))
    bad["endpoints"][0]["calls"][0]["service"] = "nope"
    status, _, problems = api(server, "PUT", "config", token, bad, **{"If-Match": f'"{start}"'})
    assert status == 400 and problems["problems"][0]["location"] == "endpoints[0].calls[0].service"

    status, headers, body = api(server, "PUT", "config", token, edited, **{"If-Match": f'"{start}"'})
    assert status == 200 and body == {"version": start + 1} and headers["ETag"] == f'"{start + 1}"'
    every_worker_serves(server, "v2")
    assert api(server, "PUT", "config", token, edited, **{"If-Match": f'"{start}"'})[0] == 412

    status, _, listing = api(server, "GET", "versions", token)
    newest = listing["results"][0]
    assert (newest["number"], newest["source"], newest["who"]) == (start + 1, "api", "pipeline")
    assert newest["summary"] == 'endpoint label: response.label "v1" → "v2"'
    status, _, body = api(server, "POST", f"versions/{start}/rollback", token, {"comment": "v2 confused users"})
    assert status == 201 and body == {"version": start + 2}
    every_worker_serves(server, "v1")
    history = server.manage("gateway", "history", "--limit", "2").stdout.splitlines()
    assert "rollback" in history[0] and "v2 confused users" in history[0] and "api" in history[1]
    assert gateway["probe"].hits["/probe"] > 0


def admin_diff_and_rollback_in_chromium(gateway: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    server = gateway["server"]
    _, _, body = api(server, "GET", "config", gateway["pipeline"])
    edited = json.loads(json.dumps(body["config"]))
    edited["endpoints"][0]["response"]["label"] = "v3"
    edited["services"]["probe"]["timeout_ms"] = 900
    status, _, put = api(server, "PUT", "config", gateway["pipeline"], edited, **{"If-Match": f'"{body["version"]}"'})
    assert status == 200
    every_worker_serves(server, "v3")
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 800})
        page.goto(f"{server.base_url}/admin/login/?next=/admin/registry/configrevision/")
        page.fill("#id_username", "owner")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        expect(page.locator("#result_list")).to_contain_text('endpoint label: response.label "v1" → "v3"')
        page.screenshot(path=str(ARTIFACTS / "changes-versions-list.png"), full_page=True)

        page.locator("#result_list th.field-number a").first.click()
        diff = page.locator("#config-diff")
        expect(diff.locator(".removed")).to_contain_text(["-    timeout_ms: 1000", "-      label: v1"])
        expect(diff.locator(".added")).to_contain_text(["+    timeout_ms: 900", "+      label: v3"])
        page.screenshot(path=str(ARTIFACTS / "changes-version-diff.png"), full_page=True)

        page.go_back()
        page.locator("#result_list th.field-number a").nth(1).click()  # the version before: v1's label
        page.click("#rollback-link")
        expect(page.locator("#content h1")).to_have_text(f"Roll back to version {put['version'] - 1}?")
        expect(page.locator("#config-diff .added")).to_have_text(["+    timeout_ms: 1000", "+      label: v1"])
        page.fill("#id_comment", "back to v1 from the admin")
        page.screenshot(path=str(ARTIFACTS / "changes-rollback-confirm.png"), full_page=True)
        page.click("#confirm-rollback")
        expect(page.locator(".messagelist")).to_contain_text(f"now version {put['version'] + 1}")
        browser.close()
    every_worker_serves(server, "v1")
    _, _, newest = api(server, "GET", f"versions/{put['version'] + 1}", gateway["pipeline"])
    assert (newest["source"], newest["who"], newest["comment"]) == ("rollback", "owner", "back to v1 from the admin")
