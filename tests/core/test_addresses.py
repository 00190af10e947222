"""The client behind trusted proxies (issue 11 item 4, API_TRUSTED_PROXIES): X-Forwarded-For is
read only from a trusted peer, right-most untrusted hop first; X-Forwarded-Proto likewise; junk
never answers 500. Through the app: allowed addresses (111), the per-address limit (113), the
login throttle's address and Secure cookies all see the same client."""

from __future__ import annotations

import falcon.testing
import pytest

from api.app import create_app
from api.core.addresses import client_origin, parse_address, parse_proxies
from keys import store
from tests.auth.conftest import Browser, csrf_of

PROXIES = parse_proxies("10.0.0.0/8, 2001:db8:ff::/48")


@pytest.mark.parametrize(("peer", "xff", "expected"), [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # an untrusted peer: the header is ignored
    ("10.0.0.2", None, "10.0.0.2"),  # a trusted peer that sent none
    ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client wrote 6.6.6.6 itself
    ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.1.1.1", "198.51.100.1"),  # two trusted proxies
    ("10.0.0.2", "10.3.3.3, 10.1.1.1", "10.3.3.3"),  # every hop trusted: the left-most
    ("10.0.0.2", "junk, 198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "198.51.100.1, junk", "10.0.0.2"),  # junk where a proxy writes: the proxy
    ("10.0.0.2", "6.6.6.6, junk, 10.1.1.1", "10.1.1.1"),
    ("10.0.0.2", "[2001:db8::7]:443", "2001:db8::7"),
    ("10.0.0.2", "2001:db8::7", "2001:db8::7"),
    ("10.0.0.2", "198.51.100.1:5678", "198.51.100.1"),
    ("10.0.0.2", "::ffff:198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "unknown", "10.0.0.2"),
    ("10.0.0.2", "fe80::1%eth0", "10.0.0.2"),
    ("10.0.0.2", "[2001:db8::7", "10.0.0.2"),
    ("10.0.0.2", "[2001:db8::7]x", "10.0.0.2"),
    ("10.0.0.2", ",,, ,", "10.0.0.2"),
    ("2001:db8:ff::1", "198.51.100.1", "198.51.100.1"),
    ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),
])
def test_client_is_the_right_most_untrusted_hop(peer, xff, expected):
    assert client_origin(peer, xff, None, "http", PROXIES) == (expected, "http")


@pytest.mark.parametrize(("peer", "proto", "expected"), [
    ("10.0.0.2", "https", "https"), ("10.0.0.2", "HTTPS ", "https"),
    ("10.0.0.2", "http, https", "https"), ("10.0.0.2", "gopher", "http"),
    ("203.0.113.9", "https", "http"),  # from an untrusted peer: ignored
])
def test_forwarded_proto_only_from_a_trusted_peer(peer, proto, expected):
    assert client_origin(peer, None, proto, "http", PROXIES)[1] == expected


def test_no_trusted_proxy_reads_no_header():
    assert client_origin("10.0.0.2", "198.51.100.1", "https", "http", ()) == ("10.0.0.2", "http")


def test_a_bad_setting_is_refused_by_name():
    with pytest.raises(ValueError, match=r"'10\.0\.0\.0/33'"):
        parse_proxies("10.0.0.1, 10.0.0.0/33")
    assert parse_proxies(" , ") == ()
    assert parse_address("300.1.1.1") is None


@pytest.fixture
def proxied(settings, ctx):
    """The app with 10.0.0.0/8 as the trusted proxies."""
    ctx.settings = ctx.settings.with_(trusted_proxies="10.0.0.0/8")
    return falcon.testing.TestClient(create_app(ctx.settings, ctx=ctx))


def hello(client, api_key, peer: str, **headers: str) -> str:
    result = client.simulate_get("/api/test.hello/json", params={"api_key": api_key.key},
                                 remote_addr=peer, headers=headers)
    assert result.status_code < 500
    return result.json["api"].get("code", "0")


def test_allowed_addresses_see_the_client_not_the_proxy(proxied, api_key):
    store.set_allowed_networks(api_key.key, ["198.51.100.0/24"])
    assert hello(proxied, api_key, "10.0.0.2", **{"X-Forwarded-For": "198.51.100.1"}) == "0"
    assert hello(proxied, api_key, "10.0.0.2", **{"X-Forwarded-For": "6.6.6.6"}) == "111"
    # a spoofed header from an untrusted peer counts for nothing
    assert hello(proxied, api_key, "6.6.6.6", **{"X-Forwarded-For": "198.51.100.1"}) == "111"
    assert hello(proxied, api_key, "10.0.0.2") == "111"  # the proxy itself is not allowed


def test_per_address_budget_is_the_clients(proxied, api_key, limit):
    limit(per_address="2/hour")
    one, two = ({"X-Forwarded-For": address} for address in ("198.51.100.1", "198.51.100.2"))
    assert [hello(proxied, api_key, "10.0.0.2", **one) for _ in range(3)] == ["0", "0", "113"]
    assert hello(proxied, api_key, "10.0.0.3", **two) == "0"  # another client, another budget


@pytest.mark.parametrize("xff", ["junk", "[::1", "1.2.3.4:x", "[2001:db8::1]:443, ,", "é" * 50,
                                 ",", "1.2.3.4," * 200])
def test_malformed_forwarded_for_is_never_a_500(proxied, api_key, xff):
    assert hello(proxied, api_key, "10.0.0.2", **{"X-Forwarded-For": xff}) == "0"
    assert proxied.simulate_get("/login", remote_addr="10.0.0.2",
                                headers={"X-Forwarded-For": xff}).status_code == 200


def test_login_throttle_per_address_is_the_clients(proxied, ctx):
    store.add_user("someone", "the-right-password")
    behind = Browser(proxied, addr="10.0.0.2")
    for n in range(20):  # MAX_FAILURES_PER_ADDRESS from one client behind the proxy
        page = _login(behind, "198.51.100.1", f"nobody-{n}", "wrong-password")
        assert "Wrong user name" in page.text
    assert "Too many failed logins" in _login(behind, "198.51.100.1", "someone",
                                              "the-right-password").text
    # another client behind the same proxy is not locked out
    assert _login(behind, "198.51.100.2", "someone", "the-right-password").status_code == 303


def _login(browser: Browser, client: str, username: str, password: str):
    headers = {"X-Forwarded-For": client}
    page = browser.client.simulate_get("/login", remote_addr=browser.addr, headers=headers)
    browser._keep(page)
    return browser._keep(browser.client.simulate_post(
        "/login", cookies=browser.cookies, remote_addr=browser.addr,
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
        body=f"csrf_token={csrf_of(page.text)}&username={username}&password={password}"))


def test_secure_cookies_follow_a_trusted_forwarded_proto(proxied):
    https = {"X-Forwarded-Proto": "https"}
    assert proxied.simulate_get("/login", remote_addr="10.0.0.2",
                                headers=https).cookies["pre"].secure
    assert not proxied.simulate_get("/login", remote_addr="6.6.6.6",
                                    headers=https).cookies["pre"].secure


def test_a_real_serve_process_believes_its_trusted_proxy(settings, ctx, api_key, tmp_path):
    """Through waitress, not the TestClient: waitress strips X-Forwarded-* by default before
    the app sees them, which made API_TRUSTED_PROXIES a no-op in every deployment (review)."""
    import json
    import urllib.request

    from tests.core.test_usage_processes import servers

    store.set_allowed_networks(api_key.key, ["9.9.9.9"])

    def code(base: str, forwarded: str | None) -> str:
        request = urllib.request.Request(f"{base}/api/test.hello/json?api_key={api_key.key}")
        if forwarded:
            request.add_header("X-Forwarded-For", forwarded)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return str(json.loads(answer.read())["api"].get("code", "0"))

    with servers(settings, tmp_path, 1, API_TRUSTED_PROXIES="127.0.0.1/32") as (base,):
        assert code(base, "9.9.9.9") == "0"  # the client behind the proxy is allowed
        assert code(base, None) == "111"  # the proxy itself is not
        assert code(base, "9.9.9.9, 8.8.8.8") == "111"  # the right-most untrusted hop decides
