"""The OAuth provider (spec §5.5, docs/oauth.md): requests-oauthlib (OAuth 1.0a) end to end on a
live server, the original's OAuth 1.0 clients (no verifier, no api_key, OAuth fields inside an
upload's multipart body) behind the legacy_oauth switch, every place OAuth parameters may travel,
every signature method, and codes 101, 105, 107, 130-135 with their /apps/oauth/* replies."""

from __future__ import annotations

import dataclasses
import io
import time
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import falcon.testing
import pytest
import requests
from oauthlib.oauth1 import (
    SIGNATURE_HMAC_SHA256,
    SIGNATURE_PLAINTEXT,
    SIGNATURE_TYPE_BODY,
    SIGNATURE_TYPE_QUERY,
    Client,
)
from PIL import Image
from requests_oauthlib import OAuth1Session

from api.auth import oauth as oauth_provider
from api.auth.tokens import token_hash
from api.models.grants import OAuthRequestToken, Token
from api.signing import md5
from api.signing.oauth1 import SIGNATURE_MD5, sign_md5_with_client
from keys import store
from keys.db import db
from tests.auth.conftest import Browser, csrf_of
from tests.conftest import FakeClock, _multipart

HOST = "falconframework.org"  # the TestClient's host: what a client signs for it
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Md5Client(Client):
    """A client that signs with the original's MD5, registered through oauthlib's extension point
    on a copy of the method table (so the library's own Client is left as it was)."""

    SIGNATURE_METHODS: ClassVar[dict[str, Any]] = dict(Client.SIGNATURE_METHODS)


Md5Client.register_signature_method(SIGNATURE_MD5, sign_md5_with_client)


@pytest.fixture
def clock() -> FakeClock:
    """Real time: the clients stamp their requests with the system clock."""
    return FakeClock(time.time())


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (20, 120, 200)).save(out, "JPEG")
    return out.getvalue()


def send(client: falcon.testing.TestClient, oauth: Client, path: str,
         params: dict[str, str] | None = None, *, http: str = "GET",
         scheme: str = "http") -> falcon.testing.Result:
    """Sign with ``oauth`` (its signature type says where the OAuth parameters go) and send."""
    url, params = f"{scheme}://{HOST}{path}", params or {}
    if http == "GET":
        uri, headers, body = oauth.sign(url + ("?" + urlencode(params) if params else ""))
    else:
        uri, headers, body = oauth.sign(url, "POST", body=urlencode(params), headers=dict(FORM))
    parts = urlsplit(uri)
    return client.simulate_request(http, parts.path, query_string=parts.query or None,
                                   headers=headers, body=body, protocol=scheme)


def send_multipart(client: falcon.testing.TestClient, oauth: Client, path: str,
                   fields: dict[str, str], photo: bytes) -> falcon.testing.Result:
    """The original's upload: OAuth fields and the signed ``file=<local path>`` text field inside
    the multipart body, then the file part."""
    _, _, body = oauth.sign(f"http://{HOST}{path}", "POST", body=urlencode(fields),
                            headers=dict(FORM))
    content_type, data = _multipart(dict(parse_qsl(body)), {"file": ("photo.jpg", photo)})
    return client.simulate_post(path, body=data, headers={"Content-Type": content_type})


def authorize(browser: Browser, token: str, decision: str = "allow",
              **perms: str) -> falcon.testing.Result:
    """The member allows (or denies) on the consent page."""
    url = "/apps/oauth/authorize?" + urlencode(
        {"oauth_token": token, **{"perm_" + area: level for area, level in perms.items()}})
    page = browser.get(url)
    assert page.status_code == 200, page.text
    return browser.post(url, {"csrf_token": csrf_of(page.text), "decision": decision})


def reply(result: falcon.testing.Result) -> dict[str, str]:
    return dict(parse_qsl(result.text))


def code(result: falcon.testing.Result) -> str:
    answer = result.json["api"]
    return answer.get("code", "0") if answer["status"] != "ok" else "0"


@pytest.fixture
def member_browser(browser, member) -> Browser:
    browser.login("member", "member-password")
    return browser


@pytest.fixture
def legacy(ctx, api_key):
    """The test key with its OAuth 1.0 switch on."""
    store.update_key(api_key.key, actor="cli", legacy_oauth=True)
    ctx.keys.invalidate(api_key.key)
    return api_key


def client_for(key: Any, **kwargs: Any) -> Client:
    return Client(key.key, client_secret=key.secret, **kwargs)


def access(client, member_browser, key, *, method=SIGNATURE_HMAC_SHA256, cls=Client,
           **perms: str) -> tuple[str, str]:
    """An access token and its secret through the 1.0a flow (callback oob, verifier typed in)."""
    oauth = cls(key.key, client_secret=key.secret, callback_uri="oob", signature_method=method,
                signature_type=SIGNATURE_TYPE_QUERY)
    got = reply(send(client, oauth, "/apps/oauth/request", http="POST"))
    page = authorize(member_browser, got["oauth_token"], **perms)
    verifier = page.text.split('<code id="verifier">')[1].split("<")[0]
    oauth = cls(key.key, client_secret=key.secret, resource_owner_key=got["oauth_token"],
                resource_owner_secret=got["oauth_token_secret"], verifier=verifier,
                signature_method=method)
    result = send(client, oauth, "/apps/oauth/access", http="POST")
    assert result.status_code == 200, result.text
    tokens = reply(result)
    return tokens["oauth_token"], tokens["oauth_token_secret"]


# -- OAuth 1.0a with requests-oauthlib on a live server ---------------------------------------


def test_requests_oauthlib_flow_check_token_and_upload(live_server, client, api_key, member,
                                                       ctx):
    base = live_server.base_url
    session = OAuth1Session(api_key.key, client_secret=api_key.secret,
                            callback_uri="https://app.example/done")
    request_token = session.fetch_request_token(base + "/apps/oauth/request")
    assert request_token["oauth_callback_confirmed"] == "true"
    stored = OAuthRequestToken.get()
    assert stored.token_hash == token_hash(request_token["oauth_token"])
    link = session.authorization_url(base + "/apps/oauth/authorize", perm_doc="write")
    browser = Browser(client)
    browser.login("member", "member-password")
    page = browser.get(link.removeprefix(base))
    assert "A Member" not in page.text and "Test app" in page.text  # the same consent page
    allowed = browser.post(link.removeprefix(base), {"csrf_token": csrf_of(page.text),
                                                      "decision": "allow"})
    assert allowed.status_code == 303
    location = allowed.headers["location"]
    assert location.startswith("https://app.example/done?oauth_token=")
    session.parse_authorization_response(location)
    pending = session.auth.client
    replay = Client(api_key.key, client_secret=api_key.secret,
                    resource_owner_key=pending.resource_owner_key,
                    resource_owner_secret=pending.resource_owner_secret, verifier=pending.verifier)
    tokens = session.fetch_access_token(base + "/apps/oauth/access")
    row = Token.get(Token.token_hash == token_hash(tokens["oauth_token"]))
    assert (row.user_id, row.api_key, row.perm_doc) == (member.id, api_key.key, "write")
    assert row.oauth_secret == tokens["oauth_token_secret"]

    checked = session.get(base + "/api/auth.checkToken/json",
                          params={"auth_token": tokens["oauth_token"]}).json()
    assert checked["auth"]["user"]["username"] == "member"
    assert checked["auth"]["permissions"]["doc"] == "write"
    uploaded = session.post(base + "/api/upload.file/json", data={"title": "Sunset"},
                            files={"file": ("sunset.jpg", jpeg(), "image/jpeg")}).json()
    assert uploaded["api"]["status"] == "ok", uploaded
    assert uploaded["ticket"]
    # The request token is single use.
    again = requests.post(base + "/apps/oauth/access",
                          headers=replay.sign(base + "/apps/oauth/access", "POST")[1], timeout=10)
    assert again.status_code == 401
    assert parse_qs(again.text)["oauth_problem"] == ["token_rejected"]


# -- codes on API calls ------------------------------------------------------------------------


def test_reused_nonce_is_133_and_wrong_signature_105(client, api_key):
    oauth = client_for(api_key, nonce="fixednonce123", signature_type=SIGNATURE_TYPE_QUERY)
    assert code(send(client, oauth, "/api/test.echo/json", {"echo": "hi"})) == "0"
    assert code(send(client, oauth, "/api/test.echo/json", {"echo": "hi"})) == "133"
    oauth = client_for(api_key, signature_type=SIGNATURE_TYPE_QUERY)
    uri, _, _ = oauth.sign(f"http://{HOST}/api/test.echo/json?echo=hi")
    tampered = urlsplit(uri.replace("echo=hi", "echo=ho"))
    result = client.simulate_get(tampered.path, query_string=tampered.query)
    assert code(result) == "105"
    xml = send(client, Client(api_key.key, client_secret="nope"), "/api/test.echo/xml",
               {"echo": "hi"})
    assert xml.text.startswith("<?xml") and 'code="105"' in xml.text  # the format asked for


@pytest.mark.parametrize("change, expected", [
    ({"oauth_version": "2.0"}, "130"),
    ({"oauth_nonce": None}, "131"),
    ({"oauth_timestamp": str(int(time.time()) - 1000)}, "132"),
    ({"oauth_timestamp": "12345"}, "134"),
    ({"oauth_signature_method": "RSA-SHA1"}, "135"),
    ({"oauth_consumer_key": "0" * 32}, "101"),
])
def test_protocol_faults_have_their_codes(client, api_key, change, expected):
    oauth = client_for(api_key, signature_type=SIGNATURE_TYPE_QUERY)
    uri, _, _ = oauth.sign(f"http://{HOST}/api/test.echo/json?echo=hi")
    params = dict(parse_qsl(urlsplit(uri).query))
    for name, value in change.items():
        if value is None:
            params.pop(name)
        else:
            params[name] = value
    result = client.simulate_get("/api/test.echo/json", params=params)
    assert code(result) == expected
    if expected == "131":
        assert result.json["api"]["message"].endswith("(oauth_nonce)")


def test_plaintext_only_over_https(client, api_key):
    oauth = client_for(api_key, signature_method=SIGNATURE_PLAINTEXT)
    assert code(send(client, oauth, "/api/test.echo/json", {"echo": "hi"})) == "135"
    assert code(send(client, oauth, "/api/test.echo/json", {"echo": "hi"},
                     scheme="https")) == "0"


@pytest.mark.parametrize("where", ["AUTH_HEADER", SIGNATURE_TYPE_QUERY, SIGNATURE_TYPE_BODY])
@pytest.mark.parametrize("method", ["HMAC-SHA1", SIGNATURE_HMAC_SHA256, SIGNATURE_MD5])
def test_every_place_and_signature_method(client, api_key, where, method):
    oauth = Md5Client(api_key.key, client_secret=api_key.secret, signature_method=method,
                      signature_type=where)
    result = send(client, oauth, "/api/test.echo/json", {"echo": "é & ü"}, http="POST")
    assert result.json["echo"] == "é & ü"


def test_token_calls_revocation_and_binding(client, member_browser, api_key, owner, ctx):
    token, secret = access(client, member_browser, api_key, doc="read")
    oauth = Md5Client(api_key.key, client_secret=api_key.secret, resource_owner_key=token,
                      resource_owner_secret=secret, signature_method=SIGNATURE_MD5)
    checked = send(client, oauth, "/api/auth.checkToken/json", {"auth_token": token})
    assert checked.json["auth"]["permissions"]["doc"] == "read"
    # Token methods need the token (106); another token as auth_token is refused (107).
    bare = client_for(api_key)
    assert code(send(client, bare, "/api/auth.checkToken/json")) == "106"
    assert code(send(client, oauth, "/api/auth.checkToken/json",
                     {"auth_token": "1-" + "0" * 32})) == "107"
    # Without its secret it is refused: as auth_token beside an MD5 api_sig or beside the
    # consumer's OAuth signature alone (107).
    params = {"api_key": api_key.key, "auth_token": token}
    params["api_sig"] = md5.signature(params, "auth.checkToken", api_key.secret)
    assert code(client.simulate_get("/api/auth.checkToken/json", params=params)) == "107"
    assert code(send(client, bare, "/api/auth.checkToken/json", {"auth_token": token})) == "107"
    # Bound to its key: another key's consumer cannot use it.
    other = store.create_key(owner, "Other app")
    stranger = Client(other.key, client_secret=other.secret, resource_owner_key=token,
                      resource_owner_secret=secret)
    assert code(send(client, stranger, "/api/test.echo/json", {"echo": "x"})) == "107"
    # Listed and revoked on the authorized-applications page: 107 at once.
    page = member_browser.get("/apps/authorized")
    assert "Test app" in page.text
    member_browser.post("/apps/authorized/revoke", {"csrf_token": csrf_of(page.text),
                                                    "api_key": api_key.key})
    assert code(send(client, oauth, "/api/auth.checkToken/json", {"auth_token": token})) == "107"


def test_api_key_beside_oauth_must_be_the_consumer_key(client, api_key, owner):
    oauth = client_for(api_key, signature_type=SIGNATURE_TYPE_QUERY)
    assert code(send(client, oauth, "/api/test.echo/json",
                     {"echo": "x", "api_key": api_key.key})) == "0"
    other = store.create_key(owner, "Other app")
    assert code(send(client, oauth, "/api/test.echo/json",
                     {"echo": "x", "api_key": other.key})) == "101"


# -- OAuth 1.0 clients: the legacy_oauth switch ------------------------------------------------


def legacy_flow(client: falcon.testing.TestClient, member_browser: Browser,
                key: Any) -> falcon.testing.Result:
    """An OAuth 1.0 client: no callback, no verifier; the last answer (access token or not)."""
    oauth = client_for(key, signature_type=SIGNATURE_TYPE_BODY)
    got = send(client, oauth, "/apps/oauth/request", http="POST")
    if got.status_code != 200:
        return got
    tokens = reply(got)
    page = authorize(member_browser, tokens["oauth_token"], doc="write")
    assert page.status_code == 200 and 'id="verifier"' in page.text  # oob: shown, not needed
    oauth = client_for(key, resource_owner_key=tokens["oauth_token"],
                       resource_owner_secret=tokens["oauth_token_secret"],
                       signature_type=SIGNATURE_TYPE_BODY)
    return send(client, oauth, "/apps/oauth/access", http="POST")


def test_oauth_1_0_client_with_legacy_switch(client, member_browser, legacy, tmp_path):
    result = legacy_flow(client, member_browser, legacy)
    assert result.status_code == 200, result.text
    tokens = reply(result)
    oauth = client_for(legacy, resource_owner_key=tokens["oauth_token"],
                       resource_owner_secret=tokens["oauth_token_secret"],
                       signature_type=SIGNATURE_TYPE_QUERY)
    # Every call OAuth-signed without api_key, token-less ones included.
    frob = send(client, client_for(legacy, signature_type=SIGNATURE_TYPE_QUERY),
                "/api/auth.getFrob/json")
    assert frob.json["auth"]["frob"]
    checked = send(client, oauth, "/api/auth.checkToken/json",
                   {"auth_token": tokens["oauth_token"]})
    assert checked.json["auth"]["user"]["username"] == "member"
    oauth = client_for(legacy, resource_owner_key=tokens["oauth_token"],
                       resource_owner_secret=tokens["oauth_token_secret"],
                       signature_type=SIGNATURE_TYPE_BODY)
    uploaded = send_multipart(client, oauth, "/api/upload.file/json",
                              {"title": "From 2009", "file": str(tmp_path / "photo.jpg")},
                              jpeg())
    assert uploaded.json["api"]["status"] == "ok", uploaded.json
    # A field changed after signing fails: multipart fields that carry OAuth are signed.
    _, _, body = oauth.sign(f"http://{HOST}/api/upload.file/json", "POST",
                            body=urlencode({"title": "From 2009"}), headers=dict(FORM))
    fields = dict(parse_qsl(body), title="Changed")
    ctype, data = _multipart(fields, {"file": ("photo.jpg", jpeg())})
    tampered = client.simulate_post("/api/upload.file/json", body=data,
                                    headers={"Content-Type": ctype})
    assert code(tampered) == "105"


def test_oauth_1_0_client_refused_without_the_switch(client, member_browser, api_key):
    result = legacy_flow(client, member_browser, api_key)
    assert result.status_code == 400
    assert reply(result) == {"oauth_problem": "parameter_absent",
                             "oauth_parameters_absent": "oauth_callback"}
    # Even with a callback, the exchange needs the verifier without the switch.
    oauth = client_for(api_key, callback_uri="oob", signature_type=SIGNATURE_TYPE_BODY)
    tokens = reply(send(client, oauth, "/apps/oauth/request", http="POST"))
    authorize(member_browser, tokens["oauth_token"])
    oauth = client_for(api_key, resource_owner_key=tokens["oauth_token"],
                       resource_owner_secret=tokens["oauth_token_secret"])
    refused = send(client, oauth, "/apps/oauth/access", http="POST")
    assert (refused.status_code, reply(refused)["oauth_parameters_absent"]) == (
        400, "oauth_verifier")


# -- /apps/oauth/* replies ---------------------------------------------------------------------


def test_token_endpoint_refusals_are_form_encoded(client, api_key, member_browser, clock):
    bad = Client(api_key.key, client_secret="wrong", callback_uri="oob")
    refused = send(client, bad, "/apps/oauth/request", http="POST")
    assert refused.status_code == 401
    assert refused.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert refused.headers["www-authenticate"].startswith("OAuth")
    assert reply(refused) == {"oauth_problem": "signature_invalid"}
    plaintext = client_for(api_key, callback_uri="oob", signature_method=SIGNATURE_PLAINTEXT)
    refused = send(client, plaintext, "/apps/oauth/request", http="POST")
    assert (refused.status_code, reply(refused)) == (
        400, {"oauth_problem": "signature_method_rejected"})
    assert client.simulate_get("/apps/oauth/access").status_code == 400
    # A request token lasts frob_ttl: then neither the consent page nor the exchange takes it.
    oauth = client_for(api_key, callback_uri="oob")
    first, second = (reply(send(client, oauth, "/apps/oauth/request", http="POST"))
                     for _ in range(2))
    page = authorize(member_browser, first["oauth_token"])
    verifier = page.text.split('<code id="verifier">')[1].split("<")[0]
    clock.advance(601)  # frob_ttl is 600
    expired = member_browser.get(f"/apps/oauth/authorize?oauth_token={second['oauth_token']}")
    assert expired.status_code == 400 and "expired" in expired.text
    late = client_for(api_key, resource_owner_key=first["oauth_token"],
                      resource_owner_secret=first["oauth_token_secret"], verifier=verifier,
                      timestamp=str(int(clock())))
    assert reply(send(client, late, "/apps/oauth/access", http="POST")) == {
        "oauth_problem": "token_rejected"}


def test_deny_redirects_with_permission_denied(client, api_key, member_browser):
    oauth = client_for(api_key, callback_uri="http://127.0.0.1:9/cb")
    tokens = reply(send(client, oauth, "/apps/oauth/request", http="POST"))
    denied = authorize(member_browser, tokens["oauth_token"], decision="deny")
    assert denied.status_code == 303
    query = parse_qs(urlsplit(denied.headers["location"]).query)
    assert query == {"oauth_token": [tokens["oauth_token"]],
                     "oauth_problem": ["permission_denied"]}
    used = member_browser.get(f"/apps/oauth/authorize?oauth_token={tokens['oauth_token']}")
    assert used.status_code == 400 and "already been used" in used.text


def test_web_key_callback_stays_on_its_origin(client, owner):
    web = store.create_key(owner, "Web app", auth_type="web",
                           callback_url="https://gallery.example/cb")
    ok = send(client, client_for(web, callback_uri="https://gallery.example/oauth"),
              "/apps/oauth/request", http="POST")
    assert ok.status_code == 200
    elsewhere = send(client, client_for(web, callback_uri="https://evil.example/cb"),
                     "/apps/oauth/request", http="POST")
    assert (elsewhere.status_code, reply(elsewhere)["oauth_problem"]) == (
        400, "parameter_rejected")


# -- review findings (issue 10): state, nonces, limits, token secrets, unsigned fields, realm --


# oauthlib's Request answers an attribute it lacks with the request parameter of that name: the
# names the validator once kept its state under, and the ones it keeps it under now.
STATE_NAMES = ("Token_row", "OAuthRequestToken_row", "without_verifier", oauth_provider._STATE,
               *(item.name for item in dataclasses.fields(oauth_provider._State)))


@pytest.mark.parametrize("name", STATE_NAMES)
@pytest.mark.parametrize("value", ["", "1", "x"])
def test_parameters_never_reach_the_validators_state(client, api_key, member_browser, owner,
                                                     name, value):
    token, secret = access(client, member_browser, api_key, doc="write")
    wrong = Client(api_key.key, client_secret=api_key.secret, resource_owner_key=token,
                   resource_owner_secret="0" * 32, signature_type=SIGNATURE_TYPE_QUERY)
    refused = send(client, wrong, "/api/auth.checkToken/json", {name: value, "auth_token": token})
    assert (refused.status_code, code(refused)) == (200, "105")
    other = store.create_key(owner, "Other app")
    stranger = Client(other.key, client_secret=other.secret, resource_owner_key=token,
                      resource_owner_secret="0" * 32, signature_type=SIGNATURE_TYPE_QUERY)
    assert code(send(client, stranger, "/api/auth.checkToken/json", {name: value})) == "107"
    right = Client(api_key.key, client_secret=api_key.secret, resource_owner_key=token,
                   resource_owner_secret=secret, signature_type=SIGNATURE_TYPE_QUERY)
    assert code(send(client, right, "/api/auth.checkToken/json",
                     {name: value, "auth_token": token})) == "0"


@pytest.mark.parametrize("name", STATE_NAMES)
def test_parameters_never_reach_the_exchange_state(client, legacy, member_browser, name):
    oauth = client_for(legacy, callback_uri="oob", signature_type=SIGNATURE_TYPE_QUERY)
    got = reply(send(client, oauth, "/apps/oauth/request", http="POST"))
    guessed = Client(legacy.key, client_secret=legacy.secret,
                     resource_owner_key=got["oauth_token"], resource_owner_secret="0" * 32,
                     verifier="1" * 32, signature_type=SIGNATURE_TYPE_QUERY)
    for params in ({name: ""}, {name: "1"}, {name: "", "without_verifier": "1"}):
        refused = send(client, guessed, "/apps/oauth/access", params, http="POST")
        assert (refused.status_code, reply(refused)) == (401, {"oauth_problem": "token_rejected"})
    # Approved, a wrong verifier with the parameter (legacy key: a verifier sent is checked).
    authorize(member_browser, got["oauth_token"])
    wrong = Client(legacy.key, client_secret=legacy.secret, resource_owner_key=got["oauth_token"],
                   resource_owner_secret=got["oauth_token_secret"], verifier="1" * 32,
                   signature_type=SIGNATURE_TYPE_QUERY)
    refused = send(client, wrong, "/apps/oauth/access", {name: "1"}, http="POST")
    assert (refused.status_code, reply(refused)) == (401, {"oauth_problem": "verifier_invalid"})


def nonce_rows() -> int:
    return int(db.execute_sql("SELECT COUNT(*) FROM used_nonces").fetchone()[0])


def test_nonces_are_recorded_only_for_valid_requests(client, api_key, member_browser):
    before = nonce_rows()
    for _ in range(5):
        bad = Client(api_key.key, client_secret="wrong", callback_uri="oob")
        assert send(client, bad, "/apps/oauth/request", http="POST").status_code == 401
        bad = Client(api_key.key, client_secret="wrong", signature_type=SIGNATURE_TYPE_QUERY)
        assert code(send(client, bad, "/api/test.echo/json", {"echo": "x"})) == "105"
    assert nonce_rows() == before
    # A nonce sent with a wrong signature is not burnt for the consumer's own request.
    bad = Client(api_key.key, client_secret="wrong", nonce="predictable01",
                 signature_type=SIGNATURE_TYPE_QUERY)
    assert code(send(client, bad, "/api/test.echo/json", {"echo": "x"})) == "105"
    good = client_for(api_key, nonce="predictable01", signature_type=SIGNATURE_TYPE_QUERY)
    assert code(send(client, good, "/api/test.echo/json", {"echo": "x"})) == "0"
    assert code(send(client, good, "/api/test.echo/json", {"echo": "x"})) == "133"
    # The token endpoints record theirs too: a replayed request token ask is nonce_used.
    oauth = client_for(api_key, callback_uri="oob", nonce="requestnonce01")
    assert send(client, oauth, "/apps/oauth/request", http="POST").status_code == 200
    replayed = send(client, oauth, "/apps/oauth/request", http="POST")
    assert (replayed.status_code, reply(replayed)) == (401, {"oauth_problem": "nonce_used"})


def test_token_endpoints_spend_the_address_budget(client, api_key, limit):
    limit(frobs="3/hour")
    oauth = client_for(api_key, callback_uri="oob")
    for _ in range(2):
        assert send(client, oauth, "/apps/oauth/request", http="POST").status_code == 200
    assert client.simulate_post("/apps/oauth/access").status_code == 400  # spent too
    before = OAuthRequestToken.select().count()
    limited = send(client, oauth, "/apps/oauth/request", http="POST")
    assert (limited.status_code, reply(limited)) == (429, {"oauth_problem": "rate_limited"})
    assert int(limited.headers["retry-after"]) > 0
    assert client.simulate_post("/apps/oauth/access").status_code == 429
    assert OAuthRequestToken.select().count() == before


def test_request_tokens_spend_the_consumer_keys_budget(client, api_key, limit):
    limit(per_key="2/hour")
    oauth = client_for(api_key, callback_uri="oob")
    for _ in range(2):
        assert send(client, oauth, "/apps/oauth/request", http="POST").status_code == 200
    limited = send(client, oauth, "/apps/oauth/request", http="POST")
    assert (limited.status_code, reply(limited)) == (429, {"oauth_problem": "rate_limited"})
    assert "retry-after" in limited.headers
    assert OAuthRequestToken.select().count() == 2


def test_unsigned_multipart_fields_only_on_uploads_and_never_over_the_query(
        client, api_key, member_browser):
    oauth = client_for(api_key, signature_type=SIGNATURE_TYPE_QUERY)
    uri, _, _ = oauth.sign(f"http://{HOST}/api/test.echo/json?echo=hi", "POST")
    ctype, data = _multipart({"echo": "evil"}, {})
    parts = urlsplit(uri)
    overridden = client.simulate_post(parts.path, query_string=parts.query, body=data,
                                      headers={"Content-Type": ctype})
    assert code(overridden) == "140"
    # A header-signed call re-sent as multipart with fields nobody signed.
    token, secret = access(client, member_browser, api_key, doc="write")
    owner_of = Client(api_key.key, client_secret=api_key.secret, resource_owner_key=token,
                      resource_owner_secret=secret)
    _, headers, _ = owner_of.sign(f"http://{HOST}/api/auth.checkToken/json", "POST")
    ctype, data = _multipart({"auth_token": token}, {})
    resent = client.simulate_post("/api/auth.checkToken/json", body=data,
                                  headers={**headers, "Content-Type": ctype})
    assert code(resent) == "140"
    # An upload (requests-oauthlib's way: OAuth in the header) takes them, unless one repeats
    # a query parameter, which the signature covers.
    for query, expected in (("", "0"), ("title=Signed", "140")):
        url = f"http://{HOST}/api/upload.file/json" + ("?" + query if query else "")
        uri, headers, _ = owner_of.sign(url, "POST")
        ctype, data = _multipart({"title": "Unsigned"}, {"file": ("a.jpg", jpeg())})
        uploaded = client.simulate_post("/api/upload.file/json", query_string=query or None,
                                        body=data, headers={**headers, "Content-Type": ctype})
        assert code(uploaded) == expected, uploaded.json


def test_require_hmac_keys_take_only_hmac_oauth(client, api_key, ctx):
    store.update_key(api_key.key, actor="cli", require_hmac=True)
    ctx.keys.invalidate(api_key.key)
    for method, expected in (("HMAC-SHA1", "0"), (SIGNATURE_HMAC_SHA256, "0"),
                             (SIGNATURE_MD5, "135"), (SIGNATURE_PLAINTEXT, "135")):
        oauth = Md5Client(api_key.key, client_secret=api_key.secret, signature_method=method,
                          signature_type=SIGNATURE_TYPE_QUERY)
        assert code(send(client, oauth, "/api/test.echo/json", {"echo": "x"},
                         scheme="https")) == expected, method
    md5_ask = Md5Client(api_key.key, client_secret=api_key.secret, callback_uri="oob",
                        signature_method=SIGNATURE_MD5)
    refused = send(client, md5_ask, "/apps/oauth/request", http="POST")
    assert (refused.status_code, reply(refused)) == (
        400, {"oauth_problem": "signature_method_rejected"})


def test_a_realm_parameter_is_refused(client, api_key):
    oauth = client_for(api_key, realm="photos")
    uri, headers, _ = oauth.sign(f"http://{HOST}/api/test.echo/json?echo=hi")
    parts = urlsplit(uri)
    assert code(client.simulate_get(parts.path, query_string=parts.query,
                                    headers=headers)) == "0"  # a realm in the header is fine
    injected = client.simulate_get(parts.path, query_string=parts.query + "&realm=INJECTED",
                                   headers=headers)
    assert (code(injected), injected.json["api"]["message"]) == (
        "146", "Unknown parameter (realm)")
    in_body = send(client, client_for(api_key), "/api/test.echo/json",
                   {"echo": "hi", "realm": "x"}, http="POST")
    assert code(in_body) == "146"
    ask = send(client, client_for(api_key, callback_uri="oob"), "/apps/oauth/request?realm=x",
               http="POST")
    assert (ask.status_code, reply(ask)) == (
        400, {"oauth_problem": "parameter_rejected", "oauth_parameters_rejected": "realm"})
