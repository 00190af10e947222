"""Acceptance: PyIpernity 0.3.1's desktop flow against a live server, approved over HTTP."""

from __future__ import annotations

import pytest
import requests

from tests.auth.conftest import csrf_of

ipernity = pytest.importorskip("ipernity")


def login(session: requests.Session, base_url: str, next_url: str) -> requests.Response:
    """Log the member in through the form, landing back on ``next_url``."""
    page = session.get(f"{base_url}/login", params={"next": next_url})
    return session.post(f"{base_url}/login", data={
        "csrf_token": csrf_of(page.text), "username": "member", "password": "member-password",
        "next": next_url})


def test_desktop_flow_with_pyipernity(live_server, api_key, member):
    base = live_server.base_url
    api = ipernity.IpernityAPI(api_key.key, api_key.secret, auth="desktop", url=base + "/api/",
                               auth_url_base=base + "/apps/authorize")
    frob = api.auth.getFrob()["auth"]["frob"]
    url = api.auth.auth_url({"doc": "write", "network": "read"}, frob)
    assert url.startswith(base + "/apps/authorize?")

    with requests.Session() as browser:
        first = browser.get(url, allow_redirects=False)
        assert first.status_code == 303 and "/login?next=" in first.headers["location"]
        page = login(browser, base, url[len(base):])
        assert page.url == url and ">Allow</button>" in page.text
        done = browser.post(url, data={"csrf_token": csrf_of(page.text), "decision": "allow"})
        assert "return to the application" in done.text

        auth = api.auth.getToken(frob)["auth"]
        checked = api.auth.checkToken(auth["token"])["auth"]
        assert checked["token"] == auth["token"]
        assert api.user_info["username"] == "member"
        assert api.user_info["user_id"] == str(member.id)
        assert api.has_permissions({"doc": "write"})
        assert api.has_permissions({"network": "read"})
        assert not api.has_permissions({"doc": "delete"})

        listing = browser.get(base + "/apps/authorized")
        assert "Test app" in listing.text
        browser.post(base + "/apps/authorized/revoke",
                     data={"csrf_token": csrf_of(listing.text), "api_key": api_key.key})
    with pytest.raises(ipernity.exceptions.APIRequestError) as error:
        api.auth.checkToken(auth["token"])
    assert int(error.value.code) == 107
