"""The API explorer in Debian chromium (Playwright with executable_path): log in, open
test.echo's page, build a signed call with the form and see the echoed parameter; a screenshot is
saved in the test's tmp dir (issue 9 item 6)."""

from __future__ import annotations

import json

from keys import store


def test_a_signed_test_echo_built_on_the_explorer_page(chromium, live_server, owner, tmp_path):
    key = store.create_key(owner, "Explorer app")
    context = chromium.new_context(viewport={"width": 1100, "height": 1400})
    try:
        page = context.new_page()
        page.goto(live_server.base_url + "/login?next=/help/api/method/test.echo")
        page.fill("input[name=username]", "owner")
        page.fill("input[name=password]", "owner-password")
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/help/api/method/test.echo")
        page.select_option("#explorer-key", key.key)
        page.fill("#explorer-param-echo", "hello from chromium")
        page.select_option("#explorer-format", "json")
        page.click("#explorer-send")
        page.wait_for_selector("#explorer-response")
        answer = json.loads(page.text_content("#explorer-response") or "")
        assert answer["api"]["status"] == "ok" and answer["echo"] == "hello from chromium"
        signed = page.text_content("#explorer-signed") or ""
        assert signed.endswith("test.echo<secret>") and "echohello from chromium" in signed
        assert key.secret not in page.content()
        page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        assert (tmp_path / "explorer.png").stat().st_size > 10_000
    finally:
        context.close()
