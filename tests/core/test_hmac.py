"""HMAC-SHA256 signatures (issue 10 item 1, docs/signing.md) and the end of MD5 splicing (item 2):
the published vectors with a negative beside each, then the pipeline through the TestClient."""

from __future__ import annotations

import secrets
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest

from api.core.errors import COMMON_ERRORS
from api.models.docs import Doc
from api.models.request_log import RequestLogEntry
from api.signing import hmac as hmac_sig
from api.signing import md5
from keys import store
from tests.docs.conftest import make_doc  # noqa: F401 (the fixture, shared as is)

KEY = "6fa87ba500002712bd4eed6020f3bd72"
SECRET = "e9a599f0cf6ce193"
TOKEN = "12345-a0b1c2d3e4f5"
HMAC = {"api_sig_method": "hmac-sha256", "api_ts": "1764100000"}

# (HTTP method, path, params, expected, provenance): docs/signing.md, each digest from the
# `openssl dgst -sha256 -hmac` command line printed there.
VECTORS = [
    ("POST", "/api/doc.set/json",
     {"api_key": KEY, "auth_token": TOKEN, "doc_id": "1234", "title": "Sunset over the zoo",
      "api_nonce": "n0nce-0001", **HMAC},
     "3f4a1d89a61554451a8a49f4191b854204b1f96f933953e6b3b72898713dc944", "vector 1, doc.set"),
    ("GET", "/api",
     {"method": "test.hello", "format": "xml", "api_key": KEY, "api_nonce": "Z9_y-8xw7v", **HMAC},
     "ab4155ee75e21dd978fb901c6c64a9ff81821f3b5c7e27a57a9d39e7d4d1b22c", "vector 2, query form"),
    ("POST", "/api/upload.file/json",
     {"api_key": KEY, "auth_token": TOKEN, "title": "Café au lait & crème",
      "description": "a+b=c ~ 100%", "file": "/home/me/photo 1.jpg", "is_public": "0",
      "api_nonce": "abcdefgh", **HMAC},
     "b79b01e2dcbc555cb0eed0b1da399c0c5e2e5cce673b6b6db7889ae75b7b4783", "vector 3, encoding"),
]
SPLICE_DIGEST = "e178cca382a223125d1ca2374138f3005aa54f7e0e8b78ce8792ba93fe6994b2"  # vector 4


@pytest.mark.parametrize("http, path, params, expected, source", VECTORS,
                         ids=[v[4] for v in VECTORS])
def test_vector(http, path, params, expected, source):
    assert hmac_sig.signature(http, path, params, SECRET) == expected
    assert hmac_sig.verify(http, path, {**params, "api_sig": expected}, SECRET, expected)


def test_base_string_of_vector_1():
    assert hmac_sig.base_string("post", "/api/doc.set/json", VECTORS[0][2]) == (
        "POST\n/api/doc.set/json\napi_key=6fa87ba500002712bd4eed6020f3bd72&api_nonce=n0nce-0001"
        "&api_sig_method=hmac-sha256&api_ts=1764100000&auth_token=12345-a0b1c2d3e4f5"
        "&doc_id=1234&title=Sunset%20over%20the%20zoo")


@pytest.mark.parametrize("text, encoded", [
    ("AZaz09-._~", "AZaz09-._~"), (" ", "%20"), ("+", "%2B"), ("&=%", "%26%3D%25"),
    ("/?#", "%2F%3F%23"), ("é", "%C3%A9"), ("😀", "%F0%9F%98%80"), ("*'()!", "%2A%27%28%29%21")])
def test_rfc3986_encoding(text, encoded):
    assert hmac_sig.encode(text) == encoded


def test_sorted_by_encoded_name_then_encoded_value():
    pairs = [("b", "2"), ("a", "z"), ("a", " "), ("A", "1")]
    assert hmac_sig.normalized_params(pairs) == "A=1&a=%20&a=z&b=2"


@pytest.mark.parametrize("change", [
    pytest.param(lambda h, p, q: (h, p, q, "0" * 16), id="wrong secret"),
    pytest.param(lambda h, p, q: (h, p, {**q, "doc_id": "1235"}, SECRET), id="value changed"),
    pytest.param(lambda h, p, q: (h, p, {**q, "extra": ""}, SECRET), id="parameter added"),
    pytest.param(lambda h, p, q: (h, "/api/doc.set/xml", q, SECRET), id="path changed"),
    pytest.param(lambda h, p, q: (h, p + "/", q, SECRET), id="trailing slash"),
    pytest.param(lambda h, p, q: ("GET", p, q, SECRET), id="HTTP method changed"),
    pytest.param(lambda h, p, q: (h, p, {**q, "title": "Sunset over the ", "zoo": ""}, SECRET),
                 id="the splice"),
])
def test_negative(change):
    http, path, params, expected, _ = VECTORS[0]
    assert not hmac_sig.verify(*change(http, path, params), expected)


def test_the_splice_is_vector_4():
    http, path, params, _, _ = VECTORS[0]
    spliced = {**params, "title": "Sunset over the ", "zoo": ""}
    assert hmac_sig.signature(http, path, spliced, SECRET) == SPLICE_DIGEST


@pytest.mark.parametrize("sent", ["", "3f4a", "ä" * 64, "\udcff" * 64, "\x00" * 64,
                                  VECTORS[0][3][:-1] + "g"])
def test_tampered_or_non_ascii_signature_is_false_not_an_exception(sent):
    assert hmac_sig.verify(*VECTORS[0][:3], SECRET, sent) is False


# -- through the pipeline ---------------------------------------------------------------------

def hmac_signed(key, http: str, path: str, ts: float, *, nonce: str | None = None,
                secret: str | None = None, **params: str) -> dict[str, str]:
    """``params`` with api_key and the HMAC fields, signed as docs/signing.md says."""
    values = {"api_key": key.key, **params, "api_sig_method": "hmac-sha256",
              "api_ts": str(int(ts)), "api_nonce": nonce or secrets.token_urlsafe(12)}
    values["api_sig"] = hmac_sig.signature(http, path, values, secret or key.secret)
    return values


def send(client, http: str, path: str, values: dict[str, str], **kwargs) -> dict:
    """GET with a query string, POST with a urlencoded body; the JSON answer."""
    if http == "GET":
        return client.simulate_get(path, params=values, **kwargs).json
    headers = {"Content-Type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})}
    return client.simulate_post(path, body=urlencode(values), headers=headers, **kwargs).json


def code(answer: dict) -> str:
    return answer["api"].get("code", "0")


@pytest.mark.parametrize("http, path, extra", [
    ("GET", "/api/test.echo/json", {}),
    ("POST", "/api/test.echo", {}),
    ("GET", "/api", {"method": "test.echo", "format": "json"}),
    ("POST", "/api", {"method": "test.echo"}),
])
def test_a_signed_call_in_each_form(client, api_key, clock, http, path, extra):
    values = hmac_signed(api_key, http, path, clock(), echo="Grüße & 100%", lg="en", **extra)
    assert send(client, http, path, values)["echo"] == "Grüße & 100%"


def test_the_path_as_sent_is_signed_not_the_routed_one(client, api_key, clock):
    values = hmac_signed(api_key, "GET", "/api/test.echo/json/", clock(), echo="x")
    assert send(client, "GET", "/api/test.echo/json/", values)["echo"] == "x"
    values = hmac_signed(api_key, "GET", "/api/test.echo/json", clock(), echo="x")
    assert code(send(client, "GET", "/api/test.echo/json/", values)) == "105"


def test_a_tampered_parameter_is_105(client, api_key, clock):
    values = hmac_signed(api_key, "POST", "/api/test.echo", clock(), echo="hello")
    assert code(send(client, "POST", "/api/test.echo", {**values, "echo": "hellO"})) == "105"


@pytest.mark.parametrize("offset, expected", [(0, "0"), (-300, "0"), (300, "0"),
                                               (-301, "144"), (301, "144"), (-86400, "144")])
def test_the_timestamp_window(client, api_key, clock, offset, expected):
    values = hmac_signed(api_key, "GET", "/api/test.hello", clock() + offset)
    answer = send(client, "GET", "/api/test.hello", values)
    assert code(answer) == expected
    if expected == "144":
        assert answer["api"]["message"] == "Timestamp out of range (server time 1800000000)"


def test_the_window_is_a_setting(settings):
    from api.config import Settings

    assert settings.hmac_window == 300
    assert Settings.from_env({"API_HMAC_WINDOW": "30"}).hmac_window == 30


def test_a_replayed_nonce_is_145_in_every_format_but_not_for_another_key(client, api_key, clock,
                                                                        owner, ctx):
    values = hmac_signed(api_key, "GET", "/api/test.hello/xml", clock(), nonce="once-only")
    assert b'status="ok"' in client.simulate_get("/api/test.hello/xml", params=values).content
    replay = client.simulate_get("/api/test.hello/xml", params=values).text
    assert 'code="145"' in replay and 'message="Nonce already used (server time 1800000000)"' in (
        replay)
    again = hmac_signed(api_key, "GET", "/api/test.hello", clock() + 5, nonce="once-only")
    assert send(client, "GET", "/api/test.hello", again)["api"]["message"] == (
        "Nonce already used (server time 1800000000)")
    other = store.create_key(owner, "Other app")
    values = hmac_signed(other, "GET", "/api/test.hello", clock(), nonce="once-only")
    assert code(send(client, "GET", "/api/test.hello", values)) == "0"


def test_a_forged_call_never_spends_a_nonce(client, api_key, clock):
    forged = hmac_signed(api_key, "GET", "/api/test.hello", clock(), nonce="precious-1",
                         secret="0" * 32)
    assert code(send(client, "GET", "/api/test.hello", forged)) == "105"
    stale = hmac_signed(api_key, "GET", "/api/test.hello", clock() - 1000, nonce="precious-1")
    assert code(send(client, "GET", "/api/test.hello", stale)) == "144"
    good = hmac_signed(api_key, "GET", "/api/test.hello", clock(), nonce="precious-1")
    assert code(send(client, "GET", "/api/test.hello", good)) == "0"


def test_a_nonce_is_kept_while_its_timestamp_could_pass(client, api_key, clock, settings):
    """Past api_ts + window + the longest arrival (header plus body timeout) its call can no
    longer be dispatched, so the store may forget it."""
    kept = settings.hmac_window + settings.header_timeout + settings.body_timeout
    ts = clock()
    first = hmac_signed(api_key, "GET", "/api/test.hello", ts, nonce="reusable")
    assert code(send(client, "GET", "/api/test.hello", first)) == "0"
    clock.advance(599)
    late = hmac_signed(api_key, "GET", "/api/test.hello", clock(), nonce="reusable")
    assert code(send(client, "GET", "/api/test.hello", late)) == "145"
    clock.advance(kept + 3 - 599)
    later = hmac_signed(api_key, "GET", "/api/test.hello", clock(), nonce="reusable")
    assert code(send(client, "GET", "/api/test.hello", later)) == "0"


@pytest.mark.parametrize("change, expected", [
    ({"api_ts": None}, "104"), ({"api_nonce": None}, "104"), ({"api_sig": None}, "104"),
    ({"api_nonce": "short7c"}, "105"), ({"api_nonce": "n" * 65}, "105"),
    ({"api_nonce": "has.dot1"}, "105"), ({"api_nonce": "spaced nonce"}, "105"),
    ({"api_ts": "1800000000.5"}, "105"), ({"api_ts": "-1800000000"}, "105"),
    ({"api_ts": "\uff11" * 10}, "105"), ({"api_sig_method": "HMAC-SHA256"}, "105"),
    ({"api_sig_method": "md5"}, "105"), ({"api_sig_method": ""}, "105"),
])
def test_missing_or_malformed_hmac_parameters(client, api_key, clock, change, expected):
    """Each call is signed over what it sends: only the named field is wrong."""
    values = {"api_key": api_key.key, "api_sig_method": "hmac-sha256",
              "api_ts": str(int(clock())), "api_nonce": "good-nonce", **change}
    values = {name: value for name, value in values.items() if value is not None}
    if "api_sig" not in change:
        values["api_sig"] = hmac_sig.signature("GET", "/api/test.hello", values, api_key.secret)
    assert code(send(client, "GET", "/api/test.hello", values)) == expected


def test_the_previous_secret_verifies_during_the_rotations_grace(client, ctx, api_key, clock):
    old = api_key.secret
    new = store.rotate_secret(api_key.key, 60, now=int(clock())).secret
    ctx.keys.invalidate(api_key.key)
    for secret in (old, new):
        values = hmac_signed(api_key, "GET", "/api/test.hello", clock(), secret=secret)
        assert code(send(client, "GET", "/api/test.hello", values)) == "0"
    clock.advance(61)
    values = hmac_signed(api_key, "GET", "/api/test.hello", clock(), secret=old)
    assert code(send(client, "GET", "/api/test.hello", values)) == "105"


def test_a_key_that_requires_hmac(call, client, ctx, api_key, clock):
    store.update_key(api_key.key, actor="test", require_hmac=True)
    ctx.keys.invalidate(api_key.key)
    assert code(call("test.echo", sign=True, echo="md5")) == "105"
    assert code(call("test.hello")) == "104"  # unsigned, though test.hello needs no signature
    values = hmac_signed(api_key, "GET", "/api/test.echo", clock(), echo="hmac")
    assert send(client, "GET", "/api/test.echo", values)["echo"] == "hmac"
    store.update_key(api_key.key, actor="test", require_hmac=False)
    ctx.keys.invalidate(api_key.key)
    assert call("test.echo", sign=True, echo="md5")["echo"] == "md5"


@pytest.mark.parametrize("header", ["ipernity.received_at", "Ipernity-Received-At", "Received-At"])
def test_no_header_sets_the_arrival_time(client, api_key, clock, header):
    """The arrival stamp comes from the server (api/server.py), never from the request."""
    values = hmac_signed(api_key, "GET", "/api/test.hello", clock() - 1000)
    answer = send(client, "GET", "/api/test.hello", values,
                  headers={header: str(clock() - 1000)})
    assert code(answer) == "144"


def test_the_transport_reads_the_stamp_and_the_raw_path():
    import falcon.testing

    from api.core.transport import RECEIVED_AT, path_as_sent, read_request

    req = falcon.testing.create_req(path="/api/test.hello", headers={"Received-At": "1"})
    assert read_request(req, "test.hello", None, 1000).received_at is None
    req.env[RECEIVED_AT] = 1234.5
    assert read_request(req, "test.hello", None, 1000).received_at == 1234.5
    assert path_as_sent({"REQUEST_URI": "/api/doc%2Eset/json/?a=1", "PATH_INFO": "/x"}) == (
        "/api/doc%2Eset/json/")
    assert path_as_sent({"REQUEST_URI": "http://h:8080/api/x?y", "PATH_INFO": "/x"}) == "/api/x"
    assert path_as_sent({"RAW_URI": "/api/caf\xc3\xa9"}) == "/api/café"
    assert path_as_sent({"SCRIPT_NAME": "/p", "PATH_INFO": "/api"}) == "/p/api"


def test_the_request_log_shows_the_hmac_string_never_the_secret(call, client, ctx, api_key,
                                                                clock, owner, token_for):
    token = token_for(owner, doc="read")
    values = hmac_signed(api_key, "POST", "/api/test.echo", clock(), secret="0" * 32,
                         echo="logged", auth_token=token)
    assert code(send(client, "POST", "/api/test.echo", values)) == "105"
    ctx.request_log.flush()
    entry = RequestLogEntry.get(RequestLogEntry.api_key == api_key.key)
    shown = {**values, "auth_token": token[:4] + "…"}
    assert entry.signed == hmac_sig.base_string("POST", "/api/test.echo", shown)
    assert entry.signed.startswith("POST\n/api/test.echo\napi_key=")
    assert api_key.secret not in entry.signed and token not in entry.signed
    assert entry.api_sig == values["api_sig"]


# -- MD5 splicing (item 2) --------------------------------------------------------------------

def test_the_md5_splice_is_146_and_changes_nothing(client, api_key, owner, token_for,
                                                   make_doc):  # noqa: F811
    """Issue 10: a captured signed doc.set re-sent with its title split into an ignored
    parameter kept its signature and changed the title."""
    doc = make_doc(owner, title="Before")
    token = token_for(owner, doc="write")
    captured = {"api_key": api_key.key, "auth_token": token, "doc_id": str(doc.id),
                "title": "Sunset over the zoo"}
    captured["api_sig"] = md5.signature(captured, "doc.set", api_key.secret)
    spliced = {**captured, "title": "Sunset over the ", "zoo": ""}
    assert md5.verify(spliced, "doc.set", api_key.secret, captured["api_sig"])  # still MD5's hole
    answer = client.simulate_post("/api/doc.set/json", params=spliced).json
    assert (code(answer), answer["api"]["message"]) == ("146", "Unknown parameter (zoo)")
    assert Doc.get_by_id(doc.id).title == "Before"
    answer = client.simulate_post("/api/doc.set/json", params=captured).json
    assert answer["doc"]["title"] == "Sunset over the zoo"


def test_the_hmac_splice_is_105(client, api_key, owner, token_for, clock,
                                make_doc):  # noqa: F811
    doc = make_doc(owner, title="Before")
    path = "/api/doc.set/json"
    captured = hmac_signed(api_key, "POST", path, clock(), auth_token=token_for(owner, doc="write"),
                           doc_id=str(doc.id), title="Sunset over the zoo")
    answer = send(client, "POST", path, {**captured, "title": "Sunset over the ", "zoo": ""})
    assert code(answer) == "105"
    assert Doc.get_by_id(doc.id).title == "Before"


@pytest.mark.parametrize("sign", ["md5", "hmac"])
def test_a_signed_call_may_add_only_protocol_parameters_and_lg(client, api_key, clock, sign):
    def answer(**params: str) -> dict:
        if sign == "hmac":
            return send(client, "GET", "/api/test.echo",
                        hmac_signed(api_key, "GET", "/api/test.echo", clock(), **params))
        values = {"api_key": api_key.key, **params}
        values["api_sig"] = md5.signature(values, "test.echo", api_key.secret)
        return client.simulate_get("/api/test.echo", params=values).json

    assert answer(echo="x", lg="fr")["api"] == {"status": "ok"}
    assert answer(echo="x", Lg="fr")["api"]["message"] == "Unknown parameter (Lg)"
    assert answer(echo="x", api_secret="s")["api"]["message"] == "Unknown parameter (api_secret)"
    assert code(answer(echo="x", **{"z" * 100: "1"})) == "146"
    assert answer(echo="x", **{"z" * 100: "1"})["api"]["message"] == (
        f"Unknown parameter ({'z' * 40})")


def test_an_unsigned_call_may_still_send_anything(call):
    assert call("test.echo", echo="x", zoo="", lg="en")["echo"] == "x"


def test_a_wrong_signature_is_105_before_an_unknown_parameter(call, api_key):
    wrong = SimpleNamespace(key=api_key.key, secret="0" * 32)
    assert code(call("test.echo", key=wrong, sign=True, echo="x", zoo="1")) == "105"


def test_144_to_146_are_listed_for_every_method(call):
    assert {144, 145, 146} <= {error.code for error in COMMON_ERRORS}
    errors = call("api.methods.get", method="test.hello")["method"]["errors"]["error"]
    assert {"144", "145", "146"} <= {error["code"] for error in errors}
