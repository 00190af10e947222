"""The authorize, login, sign-up and authorized-applications pages through falcon's TestClient."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from api.signing import md5
from keys import store
from keys.models import User
from tests.auth.conftest import Browser, authorize_url, csrf_of


def test_desktop_flow_end_to_end(browser, call, member, api_key):
    frob = call("auth.getFrob")["auth"]["frob"]
    url = authorize_url(api_key, frob=frob, doc="write", profile="read")
    first = browser.get(url)
    assert first.status_code == 303
    assert first.headers["location"].startswith("/login?next=%2Fapps%2Fauthorize%3F")
    back = browser.login("member", "member-password", next_url=url)
    assert back.status_code == 303 and back.headers["location"] == url
    page = browser.get(url)
    assert page.status_code == 200
    assert "Test app" in page.text and "An app used by the tests" in page.text
    assert "Key Owner" in page.text
    assert "See, add and change your photos, videos and documents" in page.text
    assert ">Allow</button>" in page.text and ">Deny</button>" in page.text
    done = browser.post(url, {"csrf_token": csrf_of(page.text), "decision": "allow"})
    assert done.status_code == 200 and "return to the application" in done.text
    auth = call("auth.getToken", frob=frob)["auth"]
    assert auth["permissions"]["doc"] == "write"
    assert auth["user"]["username"] == "member"


def allow_page(browser, url: str) -> str:
    """Log the member in (once) and open the authorize page; its HTML."""
    if "sid" not in browser.cookies:
        browser.login("member", "member-password")
    page = browser.get(url)
    assert page.status_code == 200, page.text
    return page.text


def test_web_flow_allow_redirects_to_the_registered_callback(browser, call, member, web_key):
    url = authorize_url(web_key, doc="read", network="write")
    page = allow_page(browser, url)
    assert "Web gallery" in page and "Shows your photos on a wall" in page
    done = browser.post(url, {"csrf_token": csrf_of(page), "decision": "allow"})
    assert done.status_code == 303
    target = urlsplit(done.headers["location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "gallery.example", "/cb")
    query = parse_qs(target.query)
    assert query["x"] == ["1"]
    auth = call("auth.getToken", key=web_key, frob=query["frob"][0])["auth"]
    assert auth["permissions"]["network"] == "write"
    assert call("auth.getToken", key=web_key, frob=query["frob"][0])["api"]["code"] == "2"


def test_nothing_in_the_request_changes_the_callback(browser, member, web_key):
    url = authorize_url(web_key, doc="read") + "&callback=https://evil.example/"
    page = browser.get(url)  # extra parameters must be signed too: this one is not
    assert page.status_code == 400
    params = {"api_key": web_key.key, "perm_doc": "read",
              "redirect_uri": "https://evil.example/"}
    params["api_sig"] = md5.signature(params, None, web_key.secret)
    signed = "/apps/authorize?" + urlencode(params)
    done = browser.post(signed, {"csrf_token": csrf_of(allow_page(browser, signed)),
                                 "decision": "allow"})
    assert done.headers["location"].startswith("https://gallery.example/cb?")


def test_web_deny_sends_access_denied(browser, member, web_key):
    url = authorize_url(web_key, doc="read")
    done = browser.post(url, {"csrf_token": csrf_of(allow_page(browser, url)),
                              "decision": "deny"})
    assert done.status_code == 303
    assert parse_qs(urlsplit(done.headers["location"]).query) == {"x": ["1"],
                                                                  "error": ["access_denied"]}


def test_desktop_deny_kills_the_frob(browser, call, member, api_key):
    frob = call("auth.getFrob")["auth"]["frob"]
    url = authorize_url(api_key, frob=frob, doc="read")
    page = allow_page(browser, url)
    done = browser.post(url, {"csrf_token": csrf_of(page), "decision": "deny"})
    assert done.status_code == 200 and "refused" in done.text
    assert call("auth.getToken", frob=frob)["api"]["code"] == "2"
    again = browser.get(url)
    assert again.status_code == 400 and "already been used" in again.text


def test_used_or_expired_frob_link(browser, call, member, api_key, clock, settings):
    frob = call("auth.getFrob")["auth"]["frob"]
    url = authorize_url(api_key, frob=frob, doc="read")
    allow_page(browser, url)
    clock.advance(settings.frob_ttl)
    page = browser.get(url)
    assert page.status_code == 400 and "expired" in page.text


@pytest.mark.parametrize("mutate, message", [
    (lambda url: url.replace("perm_doc=read", "perm_doc=write"), "signature is invalid"),
    (lambda url: url[:-4] + "0000", "signature is invalid"),
    (lambda url: url.split("&api_sig")[0], "not signed"),
    (lambda url: url.replace("api_key=", "api_key=ff"), "unknown or disabled"),
    (lambda url: "/apps/authorize", "no api_key"),
    (lambda url: url + "%ZZ", "could not be read"),
    (lambda url: url + "&api_sig=%C3%A9", "signature is invalid"),
])
def test_bad_links_get_an_error_page(browser, member, web_key, mutate, message):
    browser.login("member", "member-password")
    page = browser.get(mutate(authorize_url(web_key, doc="read")))
    assert page.status_code == 400
    assert message in page.text
    assert "Traceback" not in page.text
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("perms, message", [
    ({"doc": "admin"}, "invalid level on doc"),
    ({"profile": "delete"}, "invalid level on profile"),
    ({"user": "read"}, "unknown permission area"),
])
def test_bad_levels(browser, web_key, perms, message):
    page = browser.get(authorize_url(web_key, **perms))
    assert page.status_code == 400 and message in page.text


def test_desktop_link_needs_its_own_frob(browser, call, member, api_key, owner):
    assert "no frob" in browser.get(authorize_url(api_key, doc="read")).text
    other = store.create_key(owner, "Other desktop app")
    foreign = call("auth.getFrob", key=other)["auth"]["frob"]
    page = browser.get(authorize_url(api_key, frob=foreign, doc="read"))
    assert page.status_code == 400 and "another application" in page.text


def test_disabled_key(browser, web_key):
    store.set_enabled(web_key.key, False)
    page = browser.get(authorize_url(web_key, doc="read"))
    assert page.status_code == 400 and "disabled" in page.text


def test_framing_headers_on_every_page(browser, member, web_key):
    for url in ("/login", "/signup", authorize_url(web_key, doc="read"), "/apps/authorize"):
        result = browser.get(url)
        assert result.headers["x-frame-options"] == "DENY", url
        assert "frame-ancestors 'none'" in result.headers["content-security-policy"], url
    allow_page(browser, authorize_url(web_key, doc="read"))
    for url in ("/apps/authorized", authorize_url(web_key, doc="read"), "/logout"):
        result = browser.get(url)
        assert result.status_code == 200
        assert result.headers["x-frame-options"] == "DENY", url
        assert "frame-ancestors 'none'" in result.headers["content-security-policy"], url


def test_csrf_rejections(browser, call, member, api_key):
    frob = call("auth.getFrob")["auth"]["frob"]
    url = authorize_url(api_key, frob=frob, doc="read")
    page = allow_page(browser, url)
    for form in ({"decision": "allow"}, {"decision": "allow", "csrf_token": "0" * 64},
                 {"decision": "allow", "csrf_token": "é"}):
        refused = browser.post(url, form)
        assert refused.status_code == 403
    assert call("auth.getToken", frob=frob)["api"]["code"] == "2"
    # A token from another browser's session does not work either.
    other = Browser(browser.client)
    other.login("member", "member-password")
    stolen = {"decision": "allow", "csrf_token": csrf_of(page)}
    assert other.post(url, stolen).status_code == 403
    assert browser.post(url, {"decision": "allow", "csrf_token": csrf_of(page)}).status_code == 200


def test_login_and_signup_forms_need_csrf(browser, member):
    assert browser.post("/login", {"username": "member",
                                   "password": "member-password"}).status_code == 403
    assert browser.post("/signup", {"username": "newbie",
                                    "password": "long-enough-pw"}).status_code == 403
    assert "sid" not in browser.cookies


@pytest.mark.parametrize(("username", "realname", "message"), [
    ("..", "Dots", "not only digits or dots"),  # /home/.. would be the site's root
    ("...", "Dots", "not only digits or dots"),
    ("2024", "Digits", "not only digits or dots"),  # /home/2024 finds member 2024 first
    ("ctrl", "a\x0bb\x1b[31mred", "without line breaks or control characters"),
    ("nel", "a\x85b", "without line breaks or control characters"),  # C1: NEXT LINE
    ("bidi", "Eve\u202eevil", "without line breaks or control characters"),
    ("isolate", "Eve\u2066x\u2069", "without line breaks or control characters"),
])
def test_signup_refuses_reserved_names_and_control_characters(browser, username, realname,
                                                               message):
    form = {"csrf_token": csrf_of(browser.get("/signup").text), "username": username,
            "realname": realname, "password": "a long password"}
    answer = browser.post("/signup", form)
    assert answer.status_code == 400 and message in answer.text
    assert not User.select().where(User.username == username).exists()
    form["username"], form["realname"] = "a.b-c_1", "Zoë Ünïcode"  # dots among others: fine
    assert browser.post("/signup", form).status_code == 303


def test_session_cookie_flags_and_new_id_on_login(client, browser, member):
    result = browser.login("member", "member-password")
    cookie = result.cookies["sid"]
    assert cookie.http_only and cookie.same_site.lower() == "lax" and not cookie.secure
    first = browser.cookies["sid"]
    browser.cookies.clear()
    browser.cookies["sid"] = "planted-by-someone-else"
    browser.login("member", "member-password")
    assert browser.cookies["sid"] not in (first, "planted-by-someone-else")


def test_secure_cookie_over_https(client, member):
    page = client.simulate_get("/login", protocol="https")
    token, pre = csrf_of(page.text), page.cookies["pre"].value
    result = client.simulate_post("/login", protocol="https", cookies={"pre": pre},
                                  headers={"Content-Type": "application/x-www-form-urlencoded"},
                                  body=f"csrf_token={token}&username=member"
                                       "&password=member-password")
    assert result.status_code == 303
    assert result.cookies["sid"].secure


def test_login_redirect_only_to_local_paths(browser, member):
    for target, expected in (("https://evil.example/", "/apps/authorized"),
                             ("//evil.example/", "/apps/authorized"),
                             ("/\\evil.example", "/apps/authorized"),
                             ("/apps/authorized?x=1", "/apps/authorized?x=1")):
        browser.cookies.clear()
        assert browser.login("member", "member-password", target).headers["location"] == expected


def test_login_throttled_per_account(browser, member, clock):
    from api.web.accounts import MAX_FAILURES_PER_ACCOUNT

    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        result = browser.login("member", "wrong password")
        assert result.status_code == 400 and "Wrong user name or password" in result.text
    refused = browser.login("member", "member-password")
    assert refused.status_code == 400 and "Too many failed logins" in refused.text
    assert "sid" not in browser.cookies
    clock.advance(15 * 60)
    assert browser.login("member", "member-password").status_code == 303


def test_login_throttled_per_address(browser, member, client, clock):
    from api.models.accounts import LoginFailure
    from api.web.accounts import MAX_FAILURES_PER_ADDRESS

    # Earlier failures from this address on other names (inserted: hashing each one is slow).
    LoginFailure.insert_many([{"scope": "addr:" + browser.addr, "at": int(clock())}]
                             * (MAX_FAILURES_PER_ADDRESS - 1)).execute()
    assert "Wrong user name" in browser.login("nobody", "x").text
    assert "Too many failed logins" in browser.login("member", "member-password").text
    elsewhere = Browser(client, addr="10.9.9.9")
    assert elsewhere.login("member", "member-password").status_code == 303


def test_closed_account_cannot_log_in(browser, member):
    User.update(status="closed").where(User.id == member.id).execute()
    result = browser.login("member", "member-password")
    assert result.status_code == 400 and "closed" in result.text


def test_signup_then_authorize(browser, call, api_key):
    frob = call("auth.getFrob")["auth"]["frob"]
    url = authorize_url(api_key, frob=frob, doc="write")
    login = browser.get(url)
    signup = browser.get("/signup?next=" + login.headers["location"].split("next=")[1])
    form = {"csrf_token": csrf_of(signup.text), "username": "newbie", "realname": "New Bie",
            "password": "short", "next": url}
    assert "at least 8" in browser.post("/signup", form).text
    form["password"] = "a long password"
    done = browser.post("/signup", form)
    assert done.status_code == 303 and done.headers["location"] == url
    user = User.get(User.username == "newbie")
    assert user.password_hash.startswith("$argon2")
    assert "a long password" not in user.password_hash
    page = browser.get(url)
    assert browser.post(url, {"csrf_token": csrf_of(page.text),
                              "decision": "allow"}).status_code == 200
    assert call("auth.getToken", frob=frob)["auth"]["user"]["realname"] == "New Bie"


def test_logout(browser, member):
    browser.login("member", "member-password")
    page = browser.get("/logout")
    assert browser.post("/logout", {"csrf_token": "bad"}).status_code == 403
    assert browser.post("/logout", {"csrf_token": csrf_of(page.text)}).status_code == 303
    assert browser.get("/apps/authorized").status_code == 303


def test_authorized_apps_and_revoke(browser, call, member, api_key, token_for):
    token = token_for(member, doc="write", profile="read")
    browser.login("member", "member-password")
    page = browser.get("/apps/authorized")
    assert "Test app" in page.text and "See your profile" in page.text
    assert call("auth.checkToken", token=token)["api"]["status"] == "ok"
    assert browser.post("/apps/authorized/revoke",
                        {"api_key": api_key.key, "csrf_token": "0"}).status_code == 403
    assert call("auth.checkToken", token=token)["api"]["status"] == "ok"
    revoked = browser.post("/apps/authorized/revoke",
                           {"api_key": api_key.key, "csrf_token": csrf_of(page.text)})
    assert revoked.status_code == 303
    assert call("auth.checkToken", token=token)["api"]["code"] == "107"
    assert "You have not authorized any application" in browser.get("/apps/authorized").text


def test_second_approval_keeps_the_first_token(browser, call, member, api_key):
    tokens = []
    for level in ("write", "read"):
        frob = call("auth.getFrob")["auth"]["frob"]
        url = authorize_url(api_key, frob=frob, doc=level)
        browser.post(url, {"csrf_token": csrf_of(allow_page(browser, url)), "decision": "allow"})
        tokens.append(call("auth.getToken", frob=frob)["auth"]["token"])
    first, second = (call("auth.checkToken", token=t)["auth"] for t in tokens)
    assert (first["permissions"]["doc"], second["permissions"]["doc"]) == ("write", "read")
    listing = browser.get("/apps/authorized").text
    assert listing.count('class="app"') == 1 and "2 active authorizations" in listing
    browser.post("/apps/authorized/revoke", {"api_key": api_key.key,
                                             "csrf_token": csrf_of(listing)})
    assert all(call("auth.checkToken", token=t)["api"]["code"] == "107" for t in tokens)


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/apps/authorize", "decision=allow"),
    ("POST", "/login", "%ZZ"),
    ("POST", "/login", "a=\xff"),
    ("GET", "/apps/authorized/revoke", ""),
    ("POST", "/apps/authorize?api_key=%FF", ""),
    ("GET", "/login?next=%00", ""),
])
def test_junk_never_gives_a_500(client, method, path, body):
    route, _, query = path.partition("?")
    result = client.simulate_request(method, route, query_string=query or None,
                                     body=body.encode("latin-1"),
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert 400 <= result.status_code < 500 or result.status_code in (200, 303)
    assert "Traceback" not in result.text


def test_a_failing_page_logs_its_route_and_frames_never_the_message(client, monkeypatch,
                                                                      caplog):
    """A page's unexpected error is logged as api.errors logs a responder's: the route's template
    and the exception's class with its frames, not its message (which may quote a parameter, a
    path or a connection string); the visitor gets the error page."""
    import logging

    from api.web import pages

    def broken(value):
        raise RuntimeError(f"could not read next={value}")  # the traceback shows this line

    monkeypatch.setattr(pages, "safe_next", broken)
    with caplog.at_level(logging.INFO):
        result = client.simulate_get("/login", params={"next": "/apps/keys?x=SECRET-QUERY"})
    assert result.status_code == 500 and "Something went wrong" in result.text
    logged = caplog.text
    assert "page /login failed" in logged and "RuntimeError" in logged
    assert "SECRET-QUERY" not in logged
