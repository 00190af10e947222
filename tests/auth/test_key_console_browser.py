"""The key console in Debian chromium (Playwright with executable_path, never a downloaded
browser): log in, register a desktop key through the form, open its page, reveal the secret, and
save a screenshot in the test's tmp dir (issue 9 item 2)."""

from __future__ import annotations

from keys.models import ApiKey


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
