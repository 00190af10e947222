"""Fixtures for the grant-flow tests: a browser-like session on the pages and signed links."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import falcon.testing
import pytest

from api.signing import md5
from keys import store
from tests.conftest import require_program

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    match = CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def authorize_url(key: Any, *, frob: str | None = None, **perms: str) -> str:
    """A signed authorization link (spec §4.2: no method name) for ``key``."""
    params = {"api_key": key.key, **{"perm_" + area: level for area, level in perms.items()}}
    if frob:
        params["frob"] = frob
    params["api_sig"] = md5.signature(params, None, key.secret)
    return "/apps/authorize?" + urlencode(params)


class Browser:
    """A cookie-keeping client over falcon's TestClient, the way a browser uses the pages."""

    def __init__(self, client: falcon.testing.TestClient, addr: str = "10.0.0.1") -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.addr = addr

    def _keep(self, result: falcon.testing.Result) -> falcon.testing.Result:
        for name, cookie in result.cookies.items():
            if cookie.value and (cookie.max_age is None or cookie.max_age > 0):
                self.cookies[name] = cookie.value
            else:
                self.cookies.pop(name, None)
        return result

    def get(self, url: str) -> falcon.testing.Result:
        """GET ``url`` (path with query) with the cookies."""
        path, _, query = url.partition("?")
        return self._keep(self.client.simulate_get(path, query_string=query or None,
                                                   cookies=self.cookies,
                                                   remote_addr=self.addr))

    def post(self, url: str, form: dict[str, str]) -> falcon.testing.Result:
        """POST a urlencoded form to ``url``."""
        path, _, query = url.partition("?")
        return self._keep(self.client.simulate_post(
            path, query_string=query or None, body=urlencode(form), cookies=self.cookies,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            remote_addr=self.addr))

    def login(self, username: str, password: str, next_url: str = "") -> falcon.testing.Result:
        """Fill in and send the login form."""
        page = self.get("/login")
        return self.post("/login", {"csrf_token": csrf_of(page.text), "username": username,
                                    "password": password, "next": next_url})


@pytest.fixture
def browser(client) -> Browser:
    return Browser(client)


@pytest.fixture
def web_key(owner):
    return store.create_key(owner, "Web gallery", description="Shows your photos on a wall",
                            auth_type="web", callback_url="https://gallery.example/cb?x=1")


# Debian chromium, never a downloaded browser (Playwright's executable_path), with these flags.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium():
    """One headless Debian chromium per test module (launching it is the slow part)."""
    path = require_program("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def chart_drawn(page: Any) -> dict[str, int]:
    """The statistics chart in a Playwright page: its canvas size and how many pixels are inked."""
    return page.evaluate("""() => {
        const c = document.querySelector('#chart canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let inked = 0;
        for (let i = 3; i < d.length; i += 4) { if (d[i] > 0) inked++; }
        return {w: c.width, h: c.height, inked};
    }""")
