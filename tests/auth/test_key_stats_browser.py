"""The statistics page in Debian chromium (Playwright with executable_path, never a downloaded
browser): after calls and a flush the chart is drawn from stats.json with no console error, the
tables list the methods and codes, and a screenshot is saved in the test's tmp dir (issue 9
item 3)."""

from __future__ import annotations

from tests.auth.conftest import chart_drawn


def test_the_statistics_page_draws_its_chart(chromium, live_server, call, ctx, api_key, owner,
                                             tmp_path):
    for _ in range(5):
        call("test.hello")
    call("test.echo", echo="x")
    call("user.get", user_id="999999")  # an error
    ctx.usage.flush()
    context = chromium.new_context(viewport={"width": 1100, "height": 1400})
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.goto(live_server.base_url + "/login")
        page.fill("input[name=username]", "owner")
        page.fill("input[name=password]", "owner-password")
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/apps/**")
        page.goto(f"{live_server.base_url}/apps/keys/{api_key.key}")
        page.click("#stats-link")
        page.wait_for_url("**/stats")
        page.wait_for_selector("#chart canvas")
        page.wait_for_selector("#methods tbody tr")
        drawn = chart_drawn(page)
        assert drawn["w"] > 300 and drawn["h"] > 200 and drawn["inked"] > 500, drawn
        methods = page.inner_text("#methods tbody")
        assert "test.hello\t5\t0" in methods and "user.get\t1\t1" in methods
        assert page.is_hidden("#empty") and page.inner_text("#status") == ""
        assert page.inner_text("#codes tbody").startswith("0\t6")
        page.screenshot(path=str(tmp_path / "stats-page.png"), full_page=True)
        assert (tmp_path / "stats-page.png").stat().st_size > 10_000
        # chromium asks for /favicon.ico (we have none): its 404 is the one allowed
        assert [p for p in problems if "status of 404" not in p] == []
        assert sum("status of 404" in p for p in problems) <= 1
    finally:
        context.close()
