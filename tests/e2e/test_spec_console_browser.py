"""The living specification, blast radius and explain pages in headless Chromium, against
gunicorn with real fake services. Screenshots go to test-artifacts/ for a person to look at."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import ARTIFACTS, isolated_targets
from tests.e2e.ops_config import ops_config
from tests.e2e.test_ops_console_browser import CHROMIUM_ARGS, PASSWORD, _chromium, _set_password_code

pytestmark = pytest.mark.e2e


def test_spec_blast_radius_and_explain_pages(fake_downstream, gateway_server) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = _chromium()
    cart = fake_downstream({"*": (200, {"items": [1, 2, 3]})})
    shipping = fake_downstream({"/estimate": (503, {"error": "down"})})
    database, redis_db = isolated_targets("specui", 1)
    server = gateway_server(
        ops_config(cart=cart.url, shipping=shipping.url), workers=1, database=database, redis_db=redis_db
    )
    server.manage("createsuperuser", "--noinput", "--username", "oncall", "--email", "oncall@example.com")
    server.manage("shell", "-c", _set_password_code())
    for _ in range(3):  # shipping fails 3 times: its breaker (threshold 3) opens
        assert server.get("/v1/summary")[0] == 200
    time.sleep(1.2)  # recent stats reach Redis about once a second
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        page.goto(f"{server.base_url}/admin/login/?next=/console/")
        page.fill("#id_username", "oncall")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{server.base_url}/console/")

        row = page.locator("tr[data-service=shipping]")
        expect(row).to_have_attribute("data-state", "open")
        expect(row.get_by_test_id("impact")).to_have_text("Degrades summary")
        expect(page.locator("tr[data-service=cart]").get_by_test_id("impact")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "spec-board-impact.png"), full_page=True)

        page.click("tr[data-service=shipping] a.svc")
        radius = page.get_by_test_id("blast-radius")
        expect(radius.locator("tr[data-endpoint=summary]")).to_contain_text("ship")
        expect(radius.locator("tr[data-endpoint=summary]")).to_contain_text("200 with partialData")
        expect(radius.locator("tr[data-endpoint=summary]")).to_contain_text("Return null")
        expect(page.get_by_test_id("impact")).to_contain_text("Degrades summary")
        page.screenshot(path=str(ARTIFACTS / "spec-service-blast-radius.png"), full_page=True)

        page.goto(f"{server.base_url}/console/spec/")
        sequence = page.locator("section[data-endpoint=summary]").get_by_test_id("call-sequence")
        expect(sequence).to_contain_text("Cart: GET /carts/1")
        expect(sequence).to_contain_text("Shipping: GET /estimate")
        registry = page.get_by_test_id("registry")
        expect(registry).to_contain_text("100.00%")  # cart: 3 of 3 measured
        expect(registry).to_contain_text("0.00%")  # shipping: 0 of 3
        page.screenshot(path=str(ARTIFACTS / "spec-page.png"), full_page=True)
        page.emulate_media(media="print")
        expect(page.locator("header")).to_be_hidden()
        page.screenshot(path=str(ARTIFACTS / "spec-page-print.png"), full_page=True)
        page.emulate_media(media="screen")

        page.goto(f"{server.base_url}/console/explain/?endpoint=summary")
        page.fill("#claims", '{"sub": "user-7"}')
        page.click("button[type=submit]")
        expect(page.get_by_test_id("status")).to_have_text("200")
        waterfall = page.get_by_test_id("waterfall")
        expect(waterfall.locator("tr[data-call=cart]")).to_contain_text("200")
        expect(waterfall.locator("tr[data-call=ship]")).to_contain_text("fallback used")
        expect(waterfall.locator("tr[data-call=ship]")).to_contain_text("refused: open")
        expect(page.get_by_test_id("answer")).to_contain_text('"partialData": true')
        page.screenshot(path=str(ARTIFACTS / "spec-explain-waterfall.png"), full_page=True)
        browser.close()
    assert shipping.hits["/estimate"] == 3  # the explain run was refused by the open breaker, as a client's
