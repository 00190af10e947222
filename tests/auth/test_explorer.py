"""The API explorer on the method pages (issue 9 item 6): a logged-in owner signs and runs a call
with one of their keys through the real pipeline; the page shows the URL, the string signed (with
<secret>), the signature and the answer, never the secret."""

from __future__ import annotations

import html
import json

import pytest

from api.models.grants import Token
from api.signing import md5
from keys import store
from tests.auth.conftest import Browser, csrf_of


@pytest.fixture
def owner_browser(client, owner) -> Browser:
    browser = Browser(client)
    assert browser.login("owner", "owner-password").status_code == 303
    return browser


def explore(browser: Browser, name: str, **form: str):
    page = browser.get(f"/help/api/method/{name}")
    assert page.status_code == 200 and 'id="explorer-form"' in page.text
    return browser.post(f"/help/api/method/{name}/explore",
                        {"csrf_token": csrf_of(page.text), "format": "json", **form})


def result(page, element: str) -> str:
    start = page.text.index(f'id="explorer-{element}">') + len(f'id="explorer-{element}">')
    return html.unescape(page.text[start:page.text.index("</code>", start)])


def test_a_signed_test_echo_returns_the_echoed_parameter_and_no_secret(owner_browser, api_key):
    page = explore(owner_browser, "test.echo", api_key=api_key.key, param_echo="héllo & co")
    assert page.status_code == 200, page.text
    answer = json.loads(result(page, "response"))
    assert answer["api"]["status"] == "ok" and answer["echo"] == "héllo & co"
    params = {"api_key": api_key.key, "echo": "héllo & co"}
    assert result(page, "signed") == md5.signature_base_string(params, "test.echo", "<secret>")
    assert result(page, "signature") == md5.signature(params, "test.echo", api_key.secret)
    assert "/api/test.echo/json?" in result(page, "url")
    assert api_key.secret not in page.text


def test_act_as_me_mints_a_token_for_one_call_and_hides_it(owner_browser, api_key, owner):
    page = explore(owner_browser, "account.getQuota", api_key=api_key.key, as_me="1")
    answer = json.loads(result(page, "response"))
    assert answer["api"]["status"] == "ok", answer
    signed = result(page, "signed")
    assert "auth_token" + str(owner.id) in signed and "…" in signed and "<secret>" in signed
    assert api_key.secret not in page.text
    assert Token.select().count() == 0  # used once, deleted
    without = explore(owner_browser, "account.getQuota", api_key=api_key.key)
    assert json.loads(result(without, "response"))["api"]["code"] == "106"


def test_a_method_that_echoes_the_token_shows_it_shortened(owner_browser, api_key):
    page = explore(owner_browser, "auth.checkToken", api_key=api_key.key, as_me="1")
    answer = json.loads(result(page, "response"))
    assert answer["api"]["status"] == "ok", answer
    assert answer["auth"]["token"].endswith("…") and len(answer["auth"]["token"]) <= 5


def test_it_signs_with_the_secret_the_server_checks(owner_browser, api_key, ctx):
    """A rotation made in another process reaches the key cache within its TTL; the explorer
    signs with the cached record, as the dispatcher checks, so it never makes its own 105."""
    ctx.keys.lookup(api_key.key)  # cached with the current secret
    store.rotate_secret(api_key.key, 0)  # as `python -m keys rotate` would, elsewhere
    page = explore(owner_browser, "test.echo", api_key=api_key.key, param_echo="x")
    assert json.loads(result(page, "response"))["echo"] == "x"


def test_another_members_key_is_404_and_the_form_needs_login_and_csrf(client, owner_browser,
                                                                     api_key, member, browser):
    other = Browser(client)
    other.login("member", "member-password")
    theirs = store.create_key(member, "Their app")
    assert explore(owner_browser, "test.echo", api_key=theirs.key).status_code == 404
    assert owner_browser.post("/help/api/method/test.echo/explore",
                              {"api_key": api_key.key, "csrf_token": "x"}).status_code == 403
    assert browser.post("/help/api/method/test.echo/explore",
                        {"api_key": api_key.key}).status_code in (403,)
    assert "Log in to call this method" in browser.get("/help/api/method/test.echo").text
    moved = browser.get("/help/api/method/test.echo/explore")
    assert moved.status_code == 303 and moved.headers["location"] == "/help/api/method/test.echo"
    assert theirs.secret not in other.get("/help/api/method/test.echo").text
