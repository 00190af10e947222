"""The request log (issue 9 item 4): a key's newest failed calls, bounded per key across flushes
and processes, shown to its owner at /apps/keys/<api_key>/log; a 105 shows the string the server
signed with <secret> and the auth_token cut short, never the secret."""

from __future__ import annotations

import html
from types import SimpleNamespace

import pytest

from api.models.request_log import RequestLogEntry
from api.runtime.request_log import RequestLog
from api.signing import md5
from keys import store
from tests.auth.conftest import Browser

BOUND = 5


@pytest.fixture
def settings(settings):
    return settings.with_(request_log_bound=BOUND)


@pytest.fixture
def other_key(member):
    return store.create_key(member, "Other app")


@pytest.fixture
def owner_browser(client, owner) -> Browser:
    browser = Browser(client)
    assert browser.login("owner", "owner-password").status_code == 303
    return browser


def bad_echo(call, api_key, value: str, token: str | None = None) -> dict:
    """A test.echo signed with a wrong secret: a 105."""
    wrong = SimpleNamespace(key=api_key.key, secret="0" * 32)
    return call("test.echo", key=wrong, sign=True, token=token, echo=value)


def logged(api_key) -> list[RequestLogEntry]:
    return list(RequestLogEntry.select().where(RequestLogEntry.api_key == api_key.key)
                .order_by(RequestLogEntry.id))


def test_the_log_keeps_the_newest_failures_per_key_across_flushes(call, ctx, api_key):
    for n in range(7):
        assert bad_echo(call, api_key, f"first{n}")["api"]["code"] == "105"
    assert call("test.echo", echo="fine")["api"]["status"] == "ok"  # successes are not logged
    assert ctx.request_log.flush() == 7
    assert [e.signed.count("first") for e in logged(api_key)] == [1] * BOUND
    assert "first6" in logged(api_key)[-1].signed and "first2" in logged(api_key)[0].signed
    for n in range(3):
        bad_echo(call, api_key, f"second{n}")
    ctx.request_log.flush()
    rows = logged(api_key)
    assert len(rows) == BOUND
    assert ["first5", "first6", "second0", "second1", "second2"] == [
        e.signed.split("echo", 1)[1].removesuffix("test.echo<secret>") for e in rows]


def test_the_bound_holds_across_processes_sharing_the_database(clock, ctx, api_key, other_key):
    # Two processes: two buffers flushing into one table; the trim is SQL, so it sees both.
    first, second = RequestLog(clock, bound=BOUND), RequestLog(clock, bound=BOUND)
    for n in range(4):
        first.record(api_key.key, "test.echo", 105, "Signature is invalid", "10.0.0.1", "json")
        second.record(api_key.key, "test.echo", 100 + n, "x", "10.0.0.2", "xml")
        second.record(other_key.key, "test.echo", 110, "x", "10.0.0.2", "xml")
    first.flush()
    second.flush()
    assert len(logged(api_key)) == BOUND
    assert [e.code for e in logged(api_key)] == [105, 100, 101, 102, 103]
    assert len(logged(other_key)) == 4  # trimmed per key


def test_a_105_shows_the_server_string_with_secret_and_token_hidden(call, ctx, api_key, owner,
                                                                    owner_browser, token_for):
    token = token_for(owner)
    assert bad_echo(call, api_key, "hello", token=token)["api"]["code"] == "105"
    ctx.request_log.flush()
    expected = md5.signature_base_string(
        {"api_key": api_key.key, "auth_token": token[:4] + "…", "echo": "hello"}, "test.echo",
        "<secret>")
    (entry,) = logged(api_key)
    assert entry.signed == expected and entry.method == "test.echo" and entry.format == "json"
    assert entry.api_sig and entry.client_addr
    page = owner_browser.get(f"/apps/keys/{api_key.key}/log")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert expected in text and "Signature is invalid" in text and "105" in text
    assert api_key.secret not in text and token not in text
    detail = owner_browser.get(f"/apps/keys/{api_key.key}")
    assert f'href="/apps/keys/{api_key.key}/log"' in detail.text


def test_other_failures_are_logged_without_a_signed_string(call, ctx, api_key, owner_browser):
    assert call("test.echo", token="nonsense")["api"]["code"] in ("105", "107")
    assert call("account.getQuota")["api"]["code"] == "106"  # token missing
    ctx.request_log.flush()
    rows = logged(api_key)
    assert [e.code for e in rows][-1] == 106 and rows[-1].signed == "" and rows[-1].api_sig == ""
    assert "106" in owner_browser.get(f"/apps/keys/{api_key.key}/log").text


def test_another_owner_gets_404_on_the_log(client, api_key, member, browser):
    assert browser.get(f"/apps/keys/{api_key.key}/log").status_code == 303  # not logged in
    other = Browser(client)
    other.login("member", "member-password")
    assert other.get(f"/apps/keys/{api_key.key}/log").status_code == 404
    assert other.get("/apps/keys/" + "f" * 32 + "/log").status_code == 404


def test_a_post_to_a_key_page_without_a_form_is_its_405_page(client, api_key):
    """The log and statistics pages have no form: a POST is their 405 page, never a 500."""
    for path in ("log", "stats", "stats.json", "stats.csv"):
        page = client.simulate_post(f"/apps/keys/{api_key.key}/{path}")
        assert page.status_code == 405, (path, page.status_code)
        assert page.headers["content-type"].startswith("text/html")


def test_a_huge_signed_string_is_cut(ctx):
    """Anyone who knows a key's public api_key can cause a 105 with a 100 MB parameter: the log
    keeps a few kilobytes of its signed string, not the parameter."""
    from api.runtime.request_log import SIGNED_CHARS, RequestLog

    log = RequestLog(clock=lambda: 0.0, bound=5)
    log.record("k" * 32, "test.echo", 105, "Signature is invalid", "127.0.0.1", "json",
               signed="echo" + "x" * 10_000_000 + "test.echo<secret>", api_sig="0" * 10_000)
    kept = log._rows[0]
    assert len(str(kept["signed"])) < SIGNED_CHARS + 100 and len(str(kept["api_sig"])) == 64
    assert str(kept["signed"]).endswith("more characters not kept)")
