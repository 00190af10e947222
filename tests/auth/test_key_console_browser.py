"""The key console in Debian chromium (Playwright with executable_path, never a downloaded
browser): log in, register a desktop key through the form, open its page, reveal the secret, and
save a screenshot in the test's tmp dir (issue 9 item 2)."""

from __future__ import annotations

import pytest

from keys.models import ApiKey
from tests.auth.test_browser_flow import CHROMIUM_ARGS
from tests.conftest import require_program


@pytest.fixture(scope="module")
def chromium():
    """One headless Debian chromium for the module."""
    path = require_program("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_register_a_desktop_key_and_reveal_its_secret_in_chromium(chromium, live_server, owner,
                                                                  tmp_path):
    context = chromium.new_context(viewport={"width": 1100, "height": 1400})
    try:
        page = context.new_page()
        page.goto(live_server.base_url + "/apps/keys")
        assert "/login" in page.url  # log-in required
        page.fill("input[name=username]", "owner")
        page.fill("input[name=password]", "owner-password")
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/apps/keys")
        page.fill("#register input[name=name]", "Photo uploader")
        page.fill("#register textarea[name=description]", "Sends my photos from the desktop")
        page.check("#register input[value=desktop]")
        page.click("#register button:has-text('Register')")
        page.wait_for_url("**/apps/keys/*")
        api_key = page.url.rsplit("/", 1)[1]
        row = ApiKey.get(ApiKey.key == api_key)
        assert (row.name, row.auth_type) == ("Photo uploader", "desktop")
        assert page.text_content("#api-key") == api_key
        assert page.query_selector("#secret") is None and row.secret not in page.content()
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("button:has-text('Reveal the secret')")
        assert answer.value.headers["cache-control"] == "no-store"
        page.wait_for_selector("#secret")
        assert page.text_content("#secret") == row.secret
        assert api_key in page.url and row.secret not in page.url
        assert "revealed the secret" in page.text_content("#audit")
        page.screenshot(path=str(tmp_path / "key-page.png"), full_page=True)
        assert (tmp_path / "key-page.png").stat().st_size > 10_000
    finally:
        context.close()
