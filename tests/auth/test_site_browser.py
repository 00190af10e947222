"""The site in Debian chromium (Playwright, never a downloaded browser) and a link checker over a
live waitress server (issue 9 items 1 and 5)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests


def test_home_docs_and_a_method_page_in_chromium(chromium, live_server, tmp_path):
    problems: list[str] = []
    for width, height, name in ((1280, 800, "laptop"), (390, 844, "phone")):
        context = chromium.new_context(viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            page.on("console", lambda msg: msg.type in ("error", "warning")
                    and problems.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            page.goto(live_server.base_url + "/")
            assert page.title().startswith("An ipernity-compatible API")
            page.screenshot(path=str(tmp_path / f"home-{name}.png"), full_page=True)
            page.click("main >> text=API methods")
            page.wait_for_url("**/help/api")
            assert page.text_content("h1") == "API methods"
            page.screenshot(path=str(tmp_path / f"index-{name}.png"), full_page=True)
            page.click("a[href='/help/api/method/doc.getList']")
            page.wait_for_url("**/help/api/method/doc.getList")
            assert page.text_content("h1") == "doc.getList"
            assert "per_page" in page.text_content("#params")
            # The stylesheet applied (not blocked by the CSP): the header bar has its background.
            assert page.eval_on_selector(".site", "e => getComputedStyle(e).backgroundColor") \
                == "rgb(243, 246, 249)"
            # Nothing is wider than the viewport (tables and examples scroll or wrap).
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(tmp_path / f"method-{name}.png"), full_page=True)
            # Keyboard: the first Tab lands on the skip link, which becomes visible.
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip"
            page.screenshot(path=str(tmp_path / f"focus-{name}.png"))
        finally:
            context.close()
    assert problems == []
    print("screenshots in", tmp_path)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"a": "href", "link": "href", "form": None}.get(tag, "")
        for name, value in attrs:
            if name == wanted and value:
                self.found.append(value)




def test_no_broken_links_from_the_home_page(live_server, member):
    session = requests.Session()
    base = live_server.base_url
    login = session.get(base + "/login").text
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', login)
    assert token
    done = session.post(base + "/login", data={"csrf_token": token.group(1), "username": "member",
                                               "password": "member-password", "next": "/"})
    assert done.status_code == 200 and 'id="who">member<' in done.text
    seen: dict[str, int] = {}
    queue = ["/"]
    while queue:
        path = queue.pop()
        if path in seen or path == "/logout":
            continue  # logging out would end the crawl's session
        answer = session.get(base + path, timeout=10, allow_redirects=False)
        seen[path] = answer.status_code
        if "text/html" not in answer.headers.get("content-type", ""):
            continue
        parser = _Links()
        parser.feed(answer.text)
        for href in parser.found:
            target = urlsplit(urljoin(base + path, href))
            if f"{target.scheme}://{target.netloc}" == base:
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    broken = {path: status for path, status in seen.items() if status >= 400}
    assert not broken
    assert len([p for p in seen if p.startswith("/help/api/method/")]) > 50
    assert "/apps/authorized" in seen and any(p.startswith("/static/") for p in seen)
