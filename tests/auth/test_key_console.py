"""Key management (issue 9 items 2 and 7): the /apps/keys pages, secret rotation with a grace
period judged by the injected clock, the audit list, ``python -m keys rotate``/``user admin`` and
the operators' /admin/keys, through falcon's TestClient."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from api.runtime.usage import UsageRecorder
from keys import store
from keys.db import db
from keys.models import ApiKey, KeyAudit, UsageCounter
from tests.auth.conftest import Browser, csrf_of

DAY = 86400


def signed_hello(call, key_id: str, secret: str) -> str:
    """The API code of a signed test.echo made with ``secret``."""
    key = SimpleNamespace(key=key_id, secret=secret)
    return call("test.echo", key=key, sign=True, echo="hi")["api"].get("code", "0")


def hello(call) -> str:
    """The API code of an unsigned test.hello with the ``api_key`` fixture ("0": ok)."""
    return call("test.hello")["api"].get("code", "0")


def fresh(api_key) -> ApiKey:
    return ApiKey.get(ApiKey.id == api_key.id)


# -- rotation and the signature check ----------------------------------------------------------

def test_both_secrets_sign_within_the_grace_and_the_old_one_is_105_after(call, ctx, clock,
                                                                        api_key):
    old = api_key.secret
    assert signed_hello(call, api_key.key, old) == "0"
    rotated = store.rotate_secret(api_key.key, DAY, now=int(clock()))
    ctx.keys.invalidate(api_key.key)
    assert rotated.secret != old and rotated.previous_expires_at == int(clock()) + DAY
    assert signed_hello(call, api_key.key, rotated.secret) == "0"
    assert signed_hello(call, api_key.key, old) == "0"  # the grace: both sign
    clock.advance(DAY - 1)
    assert signed_hello(call, api_key.key, old) == "0"
    clock.advance(1)  # the grace is over (no cache invalidation needed: judged per call)
    assert signed_hello(call, api_key.key, old) == "105"
    assert signed_hello(call, api_key.key, rotated.secret) == "0"
    assert signed_hello(call, api_key.key, "0" * 32) == "105"


def test_grace_0_refuses_the_old_secret_at_once(call, ctx, clock, api_key):
    old = api_key.secret
    rotated = store.rotate_secret(api_key.key, 0, now=int(clock()))
    ctx.keys.invalidate(api_key.key)
    assert signed_hello(call, api_key.key, old) == "105"
    assert signed_hello(call, api_key.key, rotated.secret) == "0"
    assert fresh(api_key).previous_secret == ""


def test_a_second_rotation_keeps_only_the_secret_just_replaced(call, ctx, clock, api_key):
    first = api_key.secret
    second = store.rotate_secret(api_key.key, DAY, now=int(clock())).secret
    third = store.rotate_secret(api_key.key, DAY, now=int(clock())).secret
    ctx.keys.invalidate(api_key.key)
    assert [signed_hello(call, api_key.key, s) for s in (first, second, third)] == [
        "105", "0", "0"]


@pytest.mark.parametrize("grace", [-1, 7 * DAY + 1])
def test_grace_outside_0_to_7_days_is_refused(api_key, grace):
    with pytest.raises(store.KeyStoreError, match="0 to 604800"):
        store.rotate_secret(api_key.key, grace)


def test_the_authorize_link_accepts_the_old_secret_within_the_grace(browser, member, ctx, clock,
                                                                   call, api_key):
    from tests.auth.conftest import authorize_url
    frob = call("auth.getFrob")["auth"]["frob"]
    old_key = SimpleNamespace(key=api_key.key, secret=api_key.secret)
    store.rotate_secret(api_key.key, 3600, now=int(clock()))
    ctx.keys.invalidate(api_key.key)
    browser.login("member", "member-password")
    assert browser.get(authorize_url(old_key, frob=frob, doc="read")).status_code == 200
    clock.advance(3600)
    assert browser.get(authorize_url(old_key, frob=frob, doc="read")).status_code == 400


# -- the CLI -----------------------------------------------------------------------------------

@pytest.fixture
def keys_cli(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "keys", *args, "--db", url],
                              capture_output=True, text=True, timeout=60)

    return run


def test_cli_rotate_prints_the_new_secret_as_json(keys_cli):
    keys_cli("user", "add", "rita", "--password", "pw")
    made = json.loads(keys_cli("create", "--owner", "rita", "--name", "App").stdout)
    done = keys_cli("rotate", made["api_key"], "--grace", "3600")
    assert done.returncode == 0, done.stderr
    rotated = json.loads(done.stdout)
    assert rotated["api_key"] == made["api_key"]
    assert len(rotated["secret"]) == 32 and rotated["secret"] != made["secret"]
    assert rotated["previous_expires_at"] > 0
    again = json.loads(keys_cli("rotate", made["api_key"]).stdout)  # --grace 0: none kept
    assert again["previous_expires_at"] is None
    bad = keys_cli("rotate", made["api_key"], "--grace", "604801")
    assert bad.returncode == 1 and "grace must be 0 to 604800" in bad.stderr
    assert "no key" in keys_cli("rotate", "f" * 32).stderr


def test_cli_user_admin_and_add_admin(keys_cli):
    assert json.loads(keys_cli("user", "add", "root", "--password", "pw", "--admin").stdout)[
        "admin"] is True
    assert json.loads(keys_cli("user", "add", "ann", "--password", "pw").stdout)["admin"] is False
    assert json.loads(keys_cli("user", "admin", "ann").stdout)["admin"] is True
    assert json.loads(keys_cli("user", "admin", "ann", "--revoke").stdout)["admin"] is False
    assert "no user 'nobody'" in keys_cli("user", "admin", "nobody").stderr


# -- the pages ---------------------------------------------------------------------------------

@pytest.fixture
def owner_browser(client, owner) -> Browser:
    browser = Browser(client)
    assert browser.login("owner", "owner-password").status_code == 303
    return browser


def register(browser: Browser, **form: str):
    page = browser.get("/apps/keys")
    return browser.post("/apps/keys", {"csrf_token": csrf_of(page.text), **form})


def key_form(browser: Browser, api_key: str, **form: str):
    page = browser.get(f"/apps/keys/{api_key}")
    assert page.status_code == 200, page.text
    return browser.post(f"/apps/keys/{api_key}", {"csrf_token": csrf_of(page.text), **form})


def test_keys_need_a_login(browser):
    page = browser.get("/apps/keys")
    assert page.status_code == 303 and page.headers["location"].startswith("/login?next=")


def test_register_desktop_and_web_keys_through_the_form(owner_browser, owner):
    done = register(owner_browser, name="Uploader", description="Sends photos",
                    auth_type="desktop")
    assert done.status_code == 303
    api_key = done.headers["location"].rsplit("/", 1)[1]
    row = ApiKey.get(ApiKey.key == api_key)
    assert (row.owner_id, row.name, row.auth_type, row.description) == (
        owner.id, "Uploader", "desktop", "Sends photos")
    web = register(owner_browser, name="Wall", auth_type="web",
                   callback_url="https://wall.example/cb")
    assert ApiKey.get(ApiKey.key == web.headers["location"].rsplit("/", 1)[1]).callback_url == (
        "https://wall.example/cb")
    listed = owner_browser.get("/apps/keys").text
    assert "Uploader" in listed and "Wall" in listed and api_key in listed
    assert row.secret not in listed


@pytest.mark.parametrize("form, message", [
    ({"name": "", "auth_type": "desktop"}, "Name must not be empty"),
    ({"name": "W", "auth_type": "web", "callback_url": ""}, "A web key needs a callback URL"),
    ({"name": "W", "auth_type": "web", "callback_url": "ftp://x"}, "absolute http(s) URL"),
    ({"name": "W", "auth_type": "mobile"}, "Auth must be one of desktop, web"),
])
def test_a_bad_registration_comes_back_with_a_reason(owner_browser, form, message):
    page = register(owner_browser, **form)
    assert page.status_code == 400 and message in page.text
    assert ApiKey.select().count() == 0


def test_a_form_without_csrf_is_refused(owner_browser, api_key):
    assert owner_browser.post("/apps/keys", {"name": "X"}).status_code == 403
    reveal = owner_browser.post(f"/apps/keys/{api_key.key}", {"action": "reveal"})
    assert reveal.status_code == 403 and api_key.secret not in reveal.text
    wrong = owner_browser.post(f"/apps/keys/{api_key.key}",
                               {"action": "reveal", "csrf_token": "0" * 64})
    assert wrong.status_code == 403 and api_key.secret not in wrong.text


def test_reveal_is_a_post_answered_no_store(owner_browser, api_key):
    page = owner_browser.get(f"/apps/keys/{api_key.key}")
    assert api_key.secret not in page.text  # never on the GET
    shown = key_form(owner_browser, api_key.key, action="reveal")
    assert shown.status_code == 200
    assert re.search(rf'id="secret">{api_key.secret}<', shown.text)
    assert shown.headers["cache-control"] == "no-store"
    assert "revealed the secret" in owner_browser.get(f"/apps/keys/{api_key.key}").text


def test_rotate_on_the_page_shows_both_secrets_with_their_expiry(owner_browser, api_key, call,
                                                                 clock):
    old = api_key.secret
    done = key_form(owner_browser, api_key.key, action="rotate", grace=str(DAY))
    assert done.status_code == 200 and done.headers["cache-control"] == "no-store"
    new = fresh(api_key).secret
    assert f'id="secret">{new}<' in done.text and f'id="previous-secret">{old}<' in done.text
    assert "signs until" in done.text
    # The page invalidated the cache: both sign at once, the old one not after a day.
    assert signed_hello(call, api_key.key, new) == "0"
    assert signed_hello(call, api_key.key, old) == "0"
    clock.advance(DAY)
    assert signed_hello(call, api_key.key, old) == "105"
    assert key_form(owner_browser, api_key.key, action="rotate", grace="8000000").status_code == 400


def test_disable_on_the_page_is_101_at_once(owner_browser, api_key, call):
    assert hello(call) == "0"  # cached now
    assert key_form(owner_browser, api_key.key, action="disable").status_code == 303
    assert hello(call) == "101"
    assert key_form(owner_browser, api_key.key, action="enable").status_code == 303
    assert hello(call) == "0"


def settings(api_key, **changes: str) -> dict[str, str]:
    form = {"action": "settings", "name": api_key.name, "description": api_key.description,
            "allowed": ""}
    form.update(changes)
    return form


def test_allowed_addresses_on_the_page_give_111(owner_browser, api_key, call):
    assert hello(call) == "0"
    done = key_form(owner_browser, api_key.key, **settings(api_key, allowed="10.0.0.0/8, ::1"))
    assert done.status_code == 303
    assert fresh(api_key).allowed_ips == "10.0.0.0/8,::1/128"
    assert hello(call) == "111"  # the TestClient calls from 127.0.0.1
    key_form(owner_browser, api_key.key, **settings(api_key, allowed="127.0.0.0/8"))
    assert hello(call) == "0"


def test_a_bad_cidr_is_refused_with_a_clear_message(owner_browser, api_key):
    done = key_form(owner_browser, api_key.key,
                    **settings(api_key, name="Renamed", allowed="10.0.0.0/8 10.0.0.300/8"))
    assert done.status_code == 400
    assert "Allowed addresses: not an IP address or CIDR range: &#39;10.0.0.300/8&#39;" in done.text
    assert "10.0.0.300/8" in done.text  # the field keeps what was typed
    row = fresh(api_key)
    assert (row.name, row.allowed_ips) == ("Test app", "")  # nothing changed


def test_settings_and_the_audit_list_never_show_a_secret(owner_browser, api_key, owner, clock):
    old = api_key.secret
    key_form(owner_browser, api_key.key, **settings(api_key, name="Renamed", always_signed="1",
                                                   allowed="192.0.2.0/24"))
    key_form(owner_browser, api_key.key, action="reveal")
    key_form(owner_browser, api_key.key, action="rotate", grace="3600")
    key_form(owner_browser, api_key.key, action="disable")
    row = fresh(api_key)
    assert (row.name, row.always_signed, row.enabled) == ("Renamed", True, False)
    page = owner_browser.get(f"/apps/keys/{api_key.key}").text
    audit = page.split('id="audit"', 1)[1]
    for words in ("renamed the application from &#39;Test app&#39; to &#39;Renamed&#39;",
                  "turned &#39;always signed&#39; on", "set the allowed addresses to 192.0.2.0/24",
                  "revealed the secret", "rotated the secret", "disabled the key"):
        assert words in audit
    assert audit.count("<td>owner</td>") == 6
    for secret in (old, row.secret, row.previous_secret):
        assert secret and secret not in page
    assert not any(s in a.action for a in KeyAudit.select() for s in (old, row.secret))


def test_a_second_owner_gets_404_on_every_page_of_the_first_owners_key(client, api_key, member,
                                                                       call):
    other = Browser(client)
    other.login("member", "member-password")
    for path in (f"/apps/keys/{api_key.key}", "/apps/keys/" + "f" * 32):
        assert other.get(path).status_code == 404
    token = csrf_of(other.get("/apps/keys").text)
    for action in ("reveal", "rotate", "disable", "settings"):
        done = other.post(f"/apps/keys/{api_key.key}",
                          {"csrf_token": token, "action": action, "grace": "0", "name": "x"})
        assert done.status_code == 404 and api_key.secret not in done.text
    assert fresh(api_key).enabled and fresh(api_key).secret == api_key.secret
    assert api_key.key not in other.get("/apps/keys").text


# -- operators ---------------------------------------------------------------------------------

@pytest.fixture
def admin_browser(client, ctx) -> Browser:
    store.add_user("root", "root-password", is_admin=True)
    browser = Browser(client)
    assert browser.login("root", "root-password").status_code == 303
    return browser


def test_admin_sees_every_key_with_last_day_calls_and_errors(admin_browser, api_key, member,
                                                              ctx, clock, call):
    other = store.create_key(member, "Member app")
    usage = UsageRecorder(lambda: clock())
    for _ in range(3):
        usage.record(api_key.key, "test.hello", 0, 1.0)
    usage.record(api_key.key, "test.echo", 105, 1.0)
    usage.record(other.key, "test.hello", 101, 1.0)
    with db.connection_context():
        usage.flush()
        UsageCounter.create(api_key=api_key.key, method="test.hello",
                            hour=int(clock()) // 3600 - 30, code=0, calls=50)  # too old
    page = admin_browser.get("/admin/keys")
    assert page.status_code == 200
    row = re.search(rf'data-api-key="{api_key.key}">(.*?)</tr>', page.text, re.S).group(1)
    assert "owner" in row and 'class="calls">4<' in row and 'class="errors">1<' in row
    row = re.search(rf'data-api-key="{other.key}">(.*?)</tr>', page.text, re.S).group(1)
    assert "member" in row and 'class="calls">1<' in row and 'class="errors">1<' in row
    assert api_key.secret not in page.text and other.secret not in page.text


def test_admin_disables_and_enables_any_key(admin_browser, api_key, call):
    assert hello(call) == "0"
    token = csrf_of(admin_browser.get("/admin/keys").text)
    assert admin_browser.post("/admin/keys", {"api_key": api_key.key,
                                              "action": "disable"}).status_code == 403
    done = admin_browser.post("/admin/keys", {"csrf_token": token, "api_key": api_key.key,
                                              "action": "disable"})
    assert done.status_code == 303 and hello(call) == "101"
    admin_browser.post("/admin/keys", {"csrf_token": token, "api_key": api_key.key,
                                       "action": "enable"})
    assert hello(call) == "0"
    assert [(a.actor, a.action) for a in KeyAudit.select().order_by(KeyAudit.id)][-2:] == [
        ("root", "disabled the key"), ("root", "enabled the key")]


def test_non_admins_get_404_on_the_admin_page(owner_browser, browser, api_key):
    assert owner_browser.get("/admin/keys").status_code == 404
    token = csrf_of(owner_browser.get("/apps/keys").text)
    done = owner_browser.post("/admin/keys", {"csrf_token": token, "api_key": api_key.key,
                                              "action": "disable"})
    assert done.status_code == 404 and fresh(api_key).enabled
    assert browser.get("/admin/keys").status_code == 404  # not logged in
