"""The endpoint's admin page at 1400 px in headless Chromium through gunicorn: the call
sequence above the editor, no horizontal scrolling, and the admin's and console's pages
styled (WhiteNoise serves what collectstatic put in STATIC_ROOT). Screenshots go to
test-artifacts/ for a person to look at."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import ARTIFACTS, isolated_targets
from tests.e2e.ops_config import ops_config
from tests.e2e.test_ops_console_browser import CHROMIUM_ARGS, PASSWORD, _chromium, _set_password_code

pytestmark = pytest.mark.e2e
WIDTH = 1400


def test_endpoint_admin_page_fits_1400px_with_the_call_sequence_on_top(fake_downstream, gateway_server) -> None:
    from playwright.sync_api import expect, sync_playwright

    executable = _chromium()
    cart = fake_downstream({"*": (200, {"items": [1]})})
    shipping = fake_downstream({"*": (200, {"eta": 2})})
    database, redis_db = isolated_targets("f1", 2)  # not 0: the in-process tests' Redis db (flushed here)
    server = gateway_server(
        ops_config(cart=cart.url, shipping=shipping.url), workers=1, database=database, redis_db=redis_db
    )
    server.manage("createsuperuser", "--noinput", "--username", "oncall", "--email", "oncall@example.com")
    server.manage("shell", "-c", _set_password_code())
    status, headers, _ = server.get("/static/admin/css/base.css")
    assert status == 200 and "text/css" in dict((k.lower(), v) for k, v in headers.items())["content-type"]
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.goto(f"{server.base_url}/admin/login/?next=/admin/registry/endpoint/")
        # styled: the admin's header bar has its colour only when base.css arrived
        header_bg = page.eval_on_selector("#header", "e => getComputedStyle(e).backgroundColor")
        assert header_bg not in ("rgba(0, 0, 0, 0)", "transparent"), header_bg
        page.fill("#id_username", "oncall")
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url(f"{server.base_url}/admin/registry/endpoint/")

        page.click("text=summary")
        spec = page.get_by_test_id("endpoint-spec")
        expect(spec).to_be_visible()
        sequence = spec.get_by_test_id("call-sequence")
        expect(sequence.locator("thead")).to_have_text("OrderService CallRequired?TimeoutFallback")
        expect(sequence).to_contain_text("1 (parallel)")
        expect(sequence).to_contain_text("Cart: GET /carts/1")
        expect(sequence).to_contain_text("Fail request")
        expect(sequence).to_contain_text("Return null")
        expect(spec.get_by_test_id("response-fields")).to_contain_text("ship")
        spec_top = spec.bounding_box()
        editor_top = page.locator("#calls-group").bounding_box()
        assert spec_top is not None and editor_top is not None and spec_top["y"] < editor_top["y"]
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= WIDTH, scroll_width
        page.screenshot(path=str(ARTIFACTS / "admin-endpoint-1400.png"), full_page=True)

        # a problem on save shows beside the field it concerns, and the page still fits
        page.locator("#id_calls-0-path").fill("/carts/{{ crt.id }}")
        page.locator("#calls-0 summary", has_text="Composition and cache").click()
        page.locator("#id_calls-0-when").fill("{{ nope.flag }}")
        page.click("input[name=_continue]")
        error = page.locator("#id_calls-0-path_error")
        expect(error).to_contain_text("unknown call 'crt'")
        # a problem in a collapsed section opens it: seen beside its field too
        expect(page.locator("#id_calls-0-when_error")).to_be_visible()
        expect(page.locator("#id_calls-0-when_error")).to_contain_text("unknown call 'nope'")
        error_box, path_box = error.bounding_box(), page.locator("#id_calls-0-path").bounding_box()
        assert error_box is not None and path_box is not None
        assert 0 <= path_box["y"] - error_box["y"] < 80  # right above its field, not at the top of the page
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        page.screenshot(path=str(ARTIFACTS / "admin-endpoint-1400-problem.png"), full_page=True)

        page.goto(f"{server.base_url}/console/")
        expect(page.locator("tr[data-service=cart]")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "console-board-styled.png"), full_page=True)
        browser.close()
