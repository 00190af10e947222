"""Acceptance: OAuth 1.0a in Debian chromium (Playwright). A third-party web app on its own port
takes a request token with requests-oauthlib and sends the browser to /apps/oauth/authorize
(perm_doc=write); the member logs in and clicks Allow; the app's callback exchanges the verifier
for an access token, then calls auth.checkToken and uploads a photo, all OAuth-signed."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import pytest
from requests_oauthlib import OAuth1Session

from tests.auth.test_oauth import clock, jpeg  # noqa: F401 (clock: the real-time fixture)
from tests.conftest import LiveServer


class OAuthApp:
    """A web app using our API through requests-oauthlib, as a real consumer would."""

    def __init__(self, api_base: str, key: Any) -> None:
        self.api_base, self.key = api_base, key
        self.session: OAuth1Session | None = None
        self.base = ""  # its own URL, once it listens

    def __call__(self, environ: dict, start_response) -> list[bytes]:
        if environ["PATH_INFO"] == "/start":
            self.session = OAuth1Session(self.key.key, client_secret=self.key.secret,
                                         callback_uri=self.base + "/cb")
            self.session.fetch_request_token(self.api_base + "/apps/oauth/request")
            link = self.session.authorization_url(self.api_base + "/apps/oauth/authorize",
                                                  perm_doc="write")
            start_response("302 Found", [("Location", link)])
            return [b""]
        assert self.session is not None
        self.session.parse_authorization_response(
            f"{self.base}/cb?{environ.get('QUERY_STRING', '')}")
        tokens = self.session.fetch_access_token(self.api_base + "/apps/oauth/access")
        auth = self.session.get(self.api_base + "/api/auth.checkToken/json",
                                params={"auth_token": tokens["oauth_token"]}).json()["auth"]
        upload = self.session.post(self.api_base + "/api/upload.file/json",
                                   data={"title": "Allowed in a browser"},
                                   files={"file": ("b.jpg", jpeg(), "image/jpeg")}).json()
        text = (f"{auth['user']['username']} doc={auth['permissions']['doc']} "
                f"upload={upload['api']['status']}")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [f"<p id='result'>{html.escape(text)}</p>".encode()]


@pytest.fixture
def oauth_app(live_server, api_key) -> Iterator[str]:
    app = OAuthApp(live_server.base_url, api_key)
    with LiveServer(app, threads=2) as server:
        app.base = server.base_url
        yield server.base_url


def test_oauth_allow_in_chromium(chromium, oauth_app, member):
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(oauth_app + "/start")
        assert "/login" in page.url
        page.fill("input[name=username]", "member")
        page.fill("input[name=password]", "member-password")
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/apps/oauth/authorize?*")
        assert page.text_content("#app-name") == "Test app"
        assert "See, add and change your photos" in page.text_content("#permissions")
        page.click("button:has-text('Allow')")
        page.wait_for_url(oauth_app + "/cb?*")
        assert page.text_content("#result") == "member doc=write upload=ok"
    finally:
        context.close()
