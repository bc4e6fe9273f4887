"""The breaker board in headless Chromium: a breaker opened by real failures shows
as open; a reset with a reason closes it and the audit log shows the entry.
Screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import json
import os
import time

import psycopg
import pytest

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.ops_config import ops_config

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct-horse-battery"


def _chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("chromium is not installed at /usr/bin/chromium; CI must install it")
    pytest.skip("chromium not installed")


def test_board_shows_open_breaker_and_reset_is_audited(fake_downstream, gateway_server) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = _chromium()
    cart = fake_downstream({"*": (200, {"items": [1]})})
    shipping = fake_downstream({"/estimate": (502, {"error": "bad gateway"})})
    server = gateway_server(ops_config(cart=cart.url, shipping=shipping.url), workers=2)
    server.manage("createsuperuser", "--noinput", "--username", "oncall", "--email", "oncall@example.com")
    server.manage("shell", "-c", _set_password_code())
    for _ in range(3):
        assert server.get("/v1/summary")[0] == 200
    assert shipping.hits["/estimate"] == 3
    time.sleep(1.2)  # recent stats are flushed to Redis about once a second
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 700})
        page.goto(f"{server.base_url}/admin/login/?next=/console/")
        page.fill("#id_username", "oncall")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{server.base_url}/console/")

        row = page.locator("tr[data-service=shipping]")
        expect(row).to_have_attribute("data-state", "open")
        expect(row).to_contain_text("Open: calls to shipping are skipped; next probe in")
        expect(row).to_contain_text("100.0% of 3")
        expect(page.locator("tr[data-service=cart]")).to_have_attribute("data-state", "closed")
        expect(page.get_by_test_id("overall")).to_contain_text("Degraded")
        page.screenshot(path=str(ARTIFACTS / "ops-board-open.png"), full_page=True)

        page.click("tr[data-service=shipping] a.svc")
        expect(page.get_by_test_id("state")).to_have_attribute("data-state", "open")
        expect(page.get_by_test_id("history")).to_contain_text("closed → open")
        page.fill("#reason", "shipping rolled back its deploy (INC-42)")
        page.screenshot(path=str(ARTIFACTS / "ops-service-open.png"), full_page=True)
        page.click("button[value=reset]")
        expect(page.get_by_test_id("state")).to_have_attribute("data-state", "closed")
        expect(page.get_by_role("status")).to_contain_text("now closed")
        expect(page.get_by_test_id("history")).to_contain_text("shipping rolled back its deploy (INC-42)")
        expect(page.get_by_test_id("history")).to_contain_text("open → closed: reset")
        page.screenshot(path=str(ARTIFACTS / "ops-service-reset.png"), full_page=True)

        page.goto(f"{server.base_url}/console/")
        expect(page.locator("tr[data-service=shipping]")).to_have_attribute("data-state", "closed")
        page.screenshot(path=str(ARTIFACTS / "ops-board-closed.png"), full_page=True)
        browser.close()

    with psycopg.connect(server.env["DATABASE_URL"]) as conn:
        rows = conn.execute(
            "SELECT username, service, action, reason, state_before, state_after FROM console_breakerauditentry"
        ).fetchall()
    assert rows == [("oncall", "shipping", "reset", "shipping rolled back its deploy (INC-42)", "open", "closed")]
    status, _, body = server.get("/health/downstream")  # closed again, but 3 of 3 recent calls failed
    assert (status, json.loads(body)) == (200, {"status": "degraded"})


def _set_password_code() -> str:
    return (
        "from django.contrib.auth import get_user_model; "
        f"u = get_user_model().objects.get(username='oncall'); u.set_password('{PASSWORD}'); u.save()"
    )
