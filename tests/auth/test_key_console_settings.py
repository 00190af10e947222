"""The key page's issue-10 settings (api/web/console.py): the key's rate limit (shown, edited,
checked, within the server's default), "Require HMAC-SHA256 signatures" and "Allow OAuth 1.0
clients" with its warning; audited through keys.store.update_key, CSRF as the page's other forms,
and reaching the running API at once."""

from __future__ import annotations

import pytest

from keys import store
from keys.models import KeyAudit
from tests.auth.conftest import Browser, csrf_of
from tests.auth.test_key_console import fresh, key_form
from tests.auth.test_key_console import settings as settings_form
from tests.core.test_ratelimit import items

DEFAULT = "50/second;50000/hour"


@pytest.fixture
def page_owner(ctx, client, owner) -> Browser:
    """The key's owner, logged in, on a server whose per-key default is DEFAULT."""
    ctx.settings = ctx.settings.with_(ratelimit_per_key=DEFAULT)
    browser = Browser(client)
    assert browser.login("owner", "owner-password").status_code == 303
    return browser


def test_the_page_shows_the_limit_and_both_switches(page_owner, api_key):
    page = page_owner.get(f"/apps/keys/{api_key.key}").text
    assert f"{DEFAULT} (the server's default)" in page
    assert 'name="rate_limit" value=""' in page
    assert "Require HMAC-SHA256 signatures" in page
    assert "Allow OAuth 1.0 clients (no verifier)" in page
    assert "session fixation" in page.split('id="legacy-oauth-warning"', 1)[1]
    assert 'name="require_hmac" value="1">' in page and 'name="legacy_oauth" value="1">' in page


def test_the_owner_sets_all_three_audited_and_the_api_obeys_at_once(page_owner, api_key, call):
    assert call.raw("test.hello").status_code == 200  # the key is cached now
    done = key_form(page_owner, api_key.key, **settings_form(
        api_key, rate_limit=" 10/second; 5000/hours ", require_hmac="1", legacy_oauth="1"))
    assert done.status_code == 303, done.text
    row = fresh(api_key)
    assert (row.rate_limit, row.require_hmac, row.legacy_oauth) == (
        "10/second;5000/hour", True, True)
    page = page_owner.get(f"/apps/keys/{api_key.key}").text
    assert "10/second;5000/hour (this key's own)" in page
    assert 'name="require_hmac" value="1" checked' in page
    assert 'name="legacy_oauth" value="1" checked' in page
    audit = page.split('id="audit"', 1)[1]
    for words in ("set the rate limit to 10/second;5000/hour",
                  "turned &#39;require HMAC&#39; on", "turned &#39;OAuth 1.0 clients&#39; on"):
        assert words in audit
    policy = items(call.raw("test.hello").headers["RateLimit-Policy"])
    assert (policy["key-1s"]["q"], policy["key-3600s"]["q"]) == (10, 5000)
    assert call.raw("test.echo", sign=True, echo="hi").json["api"]["code"] == "105"  # MD5 now

    done = key_form(page_owner, api_key.key, **settings_form(api_key, rate_limit=""))
    assert done.status_code == 303
    row = fresh(api_key)
    assert (row.rate_limit, row.require_hmac, row.legacy_oauth) == ("", False, False)
    assert "set the rate limit to the server&#39;s default" in page_owner.get(
        f"/apps/keys/{api_key.key}").text


@pytest.mark.parametrize("typed, message", [
    ("lots", "Rate limit: not a rate limit: &#39;lots&#39;"),
    ("10/fortnight", "Rate limit: not a rate limit"),
    ("1/second;" * 7 + "1/second", "Rate limit: a rate limit is at most 64 characters"),
    ("100/second", f"Rate limit: 100/second allows more calls than this server&#39;s default "
                   f"({DEFAULT})"),
    ("1000/hour", "in one of its windows"),  # all of them could come in one second
])
def test_a_bad_or_too_generous_limit_is_refused_on_the_page(page_owner, api_key, typed,
                                                            message):
    done = key_form(page_owner, api_key.key, **settings_form(
        api_key, name="Renamed", rate_limit=typed, require_hmac="1"))
    assert done.status_code == 400
    assert message in done.text.split('id="error"', 1)[1].split("</p>", 1)[0]
    row = fresh(api_key)
    assert (row.name, row.rate_limit, row.require_hmac) == ("Test app", "", False)  # nothing
    assert 'id="settings"' in done.text and typed.strip()[:20] in done.text  # the field kept


def test_an_operators_larger_limit_survives_the_owners_other_changes(page_owner, api_key):
    store.update_key(api_key.key, actor="cli", rate_limit="500/second")
    page = page_owner.get(f"/apps/keys/{api_key.key}").text
    assert 'name="rate_limit" value="500/second"' in page
    done = key_form(page_owner, api_key.key, **settings_form(
        api_key, name="Renamed", rate_limit="500/second"))
    assert done.status_code == 303
    assert (fresh(api_key).name, fresh(api_key).rate_limit) == ("Renamed", "500/second")
    old_form = settings_form(api_key, name="Again")  # a form from before the field existed
    assert key_form(page_owner, api_key.key, **old_form).status_code == 303
    assert fresh(api_key).rate_limit == "500/second"


def test_the_settings_need_the_forms_csrf_token(page_owner, api_key):
    done = page_owner.post(f"/apps/keys/{api_key.key}", settings_form(
        api_key, rate_limit="1/hour", require_hmac="1", legacy_oauth="1", csrf_token="0" * 64))
    assert done.status_code == 403
    row = fresh(api_key)
    assert (row.rate_limit, row.require_hmac, row.legacy_oauth) == ("", False, False)
    assert not KeyAudit.select().where(KeyAudit.action.contains("rate limit")).exists()


def test_another_member_cannot_change_them(client, page_owner, api_key, member):
    stranger = Browser(client, addr="10.0.0.2")
    assert stranger.login("member", "member-password").status_code == 303
    own = stranger.get("/apps/keys")  # any page of theirs gives a token bound to their session
    done = stranger.post(f"/apps/keys/{api_key.key}", {
        **settings_form(api_key, require_hmac="1"), "csrf_token": csrf_of(own.text)})
    assert done.status_code == 404
    assert fresh(api_key).require_hmac is False
