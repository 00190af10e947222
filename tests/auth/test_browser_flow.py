"""Acceptance: the web flow in Debian chromium (Playwright) with a third-party app on its own port.

The app redirects to /apps/authorize with a signed link; the member logs in and clicks Allow (or
Deny); the app's callback exchanges the frob for a token with auth.getToken. A tampered link ends
on our error page.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode

import pytest
import requests

from api.signing import md5
from keys import store
from tests.conftest import LiveServer


class ThirdPartyApp:
    """A tiny WSGI web app that uses our API the way a real web application would."""

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base
        self.key = self.secret = ""  # set once the key exists (its callback names our port)

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        path, query = environ["PATH_INFO"], parse_qs(environ.get("QUERY_STRING", ""))
        if path == "/start":
            link = {"api_key": self.key, "perm_doc": "write"}
            link["api_sig"] = md5.signature(link, None, self.secret)
            if "tamper" in query:
                link["perm_doc"] = "delete"
            start_response("302 Found", [("Location", f"{self.api_base}/apps/authorize?"
                                                      + urlencode(link))])
            return [b""]
        if path == "/cb":
            return self.callback(query, start_response)
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    def callback(self, query: dict[str, list[str]], start_response) -> list[bytes]:
        """Exchange the frob for a token, as the app's server side would."""
        if "error" in query:
            text = f"denied: {query['error'][0]}"
        else:
            params = {"api_key": self.key, "frob": query["frob"][0]}
            params["api_sig"] = md5.signature(params, "auth.getToken", self.secret)
            answer = requests.get(f"{self.api_base}/api/auth.getToken/json", params=params,
                                  timeout=10).json()
            auth = answer["auth"]
            text = (f"token ok for {auth['user']['username']} "
                    f"with doc={auth['permissions']['doc']}")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [f"<p id='result'>{html.escape(text)}</p>".encode()]


@pytest.fixture
def third_party(live_server, owner) -> Iterator[str]:
    """The third-party app's base URL; its web key's callback points at it."""
    app = ThirdPartyApp(live_server.base_url)
    with LiveServer(app, threads=2) as server:
        key = store.create_key(owner, "Wall of photos", description="Your photos on a wall",
                               auth_type="web", callback_url=f"{server.base_url}/cb")
        app.key, app.secret = key.key, key.secret
        yield server.base_url


@pytest.fixture
def browser_page(chromium):
    """A fresh browser context (no cookies) per test."""
    context = chromium.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def log_in(page) -> None:
    """Fill in the login form the authorize page sent us to."""
    assert "/login" in page.url
    page.fill("input[name=username]", "member")
    page.fill("input[name=password]", "member-password")
    page.click("button:has-text('Log in')")
    page.wait_for_url("**/apps/authorize?*")


def test_web_flow_allow_in_chromium(third_party, browser_page, member):
    page = browser_page
    page.goto(third_party + "/start")
    log_in(page)
    assert "/apps/authorize?" in page.url
    assert page.text_content("#app-name") == "Wall of photos"
    assert "See, add and change your photos" in page.text_content("#permissions")
    page.click("button:has-text('Allow')")
    page.wait_for_url(third_party + "/cb?*")
    assert page.text_content("#result") == "token ok for member with doc=write"


def test_web_flow_deny_in_chromium(third_party, browser_page, member):
    page = browser_page
    page.goto(third_party + "/start")
    log_in(page)
    page.click("button:has-text('Deny')")
    page.wait_for_url(third_party + "/cb?*")
    assert page.text_content("#result") == "denied: access_denied"


def test_tampered_signature_in_chromium(third_party, browser_page, member):
    page = browser_page
    response = page.goto(third_party + "/start?tamper=1")
    assert response.status == 400
    assert "signature is invalid" in page.text_content("#message")
    assert page.query_selector("button") is None
