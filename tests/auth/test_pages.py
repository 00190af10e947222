"""The authorize, login, sign-up and authorized-applications pages through falcon's TestClient."""

from __future__ import annotations

from tests.auth.conftest import authorize_url, csrf_of


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
