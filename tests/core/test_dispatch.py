"""The call pipeline through the real app: every global error it can produce, in its envelope."""

import dataclasses
import io
import json
import logging
from pathlib import Path

import falcon.testing
import pytest

from api.app import create_app
from api.core.context import Call
from api.core.errors import method_error
from api.core.registry import MethodGroup, Registry
from api.methods import GROUPS
from api.runtime.access_log import AccessLog
from api.signing import md5
from keys import store
from keys.models import UsageCounter

probe = MethodGroup()
Bad = method_error(1, "Bad thing")


@probe.method("probe.write", title="Needs a write token, POST and a signature", token=True,
              sign=True, post=True, perms={"doc": "write"}, missing=Bad)
def probe_write(call: Call, value: int) -> dict:
    return {"value": {"v": value, "user": call.user.username}}


@probe.method("probe.crash", title="Fails unexpectedly")
def probe_crash(call: Call) -> dict:
    raise RuntimeError("secret internals /etc/passwd")


@probe.method("probe.list", title="A flag and paging (maximum 50)", invalid=Bad)
def probe_list(call: Call, flag: "bool" = False, per_page: "int | None" = None,
               page: "int | None" = None) -> dict:
    from api.core.paging import paging

    return {"items": {**paging(page, per_page, default=10, maximum=50).attrs(0, 0),
                      "flag": flag, "user": call.user.username if call.user else ""}}


@pytest.fixture
def probe_client(settings, ctx):
    registry = Registry.from_groups([*GROUPS, probe])
    return falcon.testing.TestClient(create_app(settings,
                                                ctx=dataclasses.replace(ctx, registry=registry)))


@pytest.fixture
def probe_call(probe_client, ctx, api_key):
    from tests.conftest import Caller

    return Caller(probe_client, dataclasses.replace(ctx, registry=Registry.from_groups(
        [*GROUPS, probe])), api_key)


def error_of(result):
    """The error code as a number (on the wire it is a string, spec §2.3 rule 1)."""
    assert result.status_code == 200, result.text
    code = result.json["api"]["code"]
    assert isinstance(code, str), code
    return int(code)


def test_missing_key_is_100(client):
    assert error_of(client.simulate_get("/api/test.hello")) == 100


def test_unknown_key_is_101(client):
    assert error_of(client.simulate_get("/api/test.hello", params={"api_key": "0" * 32})) == 101
    assert error_of(client.simulate_get("/api/test.hello", params={"api_key": "zz'; drop"})) == 101


def test_disabled_key_is_101_after_invalidation(call, ctx, api_key):
    store.set_enabled(api_key.key, False)
    ctx.keys.invalidate(api_key.key)
    assert call("test.hello")["api"]["code"] == "101"


def test_unknown_format_is_102_rendered_as_json(call):
    result = call.raw("test.hello", "yaml")
    assert result.headers["content-type"].startswith("application/json")
    assert result.json["api"] == {"status": "error", "code": "102", "message": "Invalid format"}


@pytest.mark.parametrize("path, query", [("/api/no.such.method", ""), ("/api", ""),
                                         ("/api", "method=&")])
def test_unknown_or_empty_method_is_103(client, api_key, path, query):
    result = client.simulate_get(path, query_string=f"{query}api_key={api_key.key}")
    assert error_of(result) == 103


def test_query_form_with_method_and_format(client, api_key):
    result = client.simulate_get("/api", query_string=f"method=test.echo&format=xml&echo=hi&"
                                                      f"api_key={api_key.key}")
    assert b"<echo>hi</echo>" in result.content


def test_format_defaults_to_json(call):
    assert call.raw("test.hello", None).json["hello"] == "hello world!"


def test_signature_missing_104_and_wrong_105(probe_call, member, token_for):
    token = token_for(member, doc="write")
    assert probe_call("probe.write", token=token, sign=False, value=1)["api"]["code"] == "104"
    result = probe_call.raw("probe.write", token=token, sign=False, value=1, api_sig="0" * 32)
    assert result.json["api"]["code"] == "105"
    assert probe_call("probe.write", token=token, value=7)["value"] == {"v": "7",
                                                                        "user": "member"}


def test_signature_over_every_received_parameter(probe_call, member, token_for, api_key):
    token = token_for(member, doc="write")
    params = {"api_key": api_key.key, "auth_token": token, "value": "3", "anything": "x"}
    params["api_sig"] = md5.signature(params, "probe.write", api_key.secret)
    params["added_later"] = "y"
    result = probe_call.client.simulate_post("/api/probe.write", params=params)
    assert result.json["api"]["code"] == "105"


def test_post_required_is_120(probe_call, member, token_for):
    token = token_for(member, doc="write")
    assert probe_call("probe.write", token=token, http="GET", value=1)["api"]["code"] == "120"


def test_token_missing_106_invalid_107_permission_110(probe_call, member, token_for):
    assert probe_call("probe.write", sign=True, value=1)["api"]["code"] == "106"
    assert probe_call("probe.write", token="1-" + "0" * 32, value=1)["api"]["code"] == "107"
    reader = token_for(member, doc="read")
    assert probe_call("probe.write", token=reader, value=1)["api"]["code"] == "110"


def test_token_of_another_key_is_107(probe_call, member, token_for, owner):
    other = store.create_key(owner, "Other app")
    token = token_for(member, key=other, doc="write")
    assert probe_call("probe.write", token=token, value=1)["api"]["code"] == "107"


def test_closed_account_is_108(probe_call, member, token_for):
    token = token_for(member, doc="write")
    member.status = "closed"
    member.save()
    assert probe_call("probe.write", token=token, value=1)["api"]["code"] == "108"


def test_method_specific_code_for_bad_parameter(probe_call, member, token_for):
    token = token_for(member, doc="write")
    assert probe_call("probe.write", token=token)["api"] == {"status": "error", "code": "1",
                                                              "message": "Bad thing"}
    assert probe_call("probe.write", token=token, value="x")["api"]["code"] == "1"


def test_unexpected_exception_is_500_without_internals(probe_call, caplog):
    with caplog.at_level(logging.ERROR):
        result = probe_call.raw("probe.crash")
    assert result.status_code == 500
    assert result.json == {"api": {"status": "error", "code": "500", "message": "Service error"}}
    assert "internals" not in result.text
    assert "RuntimeError: secret internals" in caplog.text  # the traceback is logged


def test_always_signed_key_needs_a_signature(call, owner, ctx):
    key = store.create_key(owner, "Strict app", always_signed=True)
    assert call("test.hello", key=key)["api"]["code"] == "104"
    assert call("test.hello", key=key, sign=True)["hello"] == "hello world!"


def test_allowed_ips_is_111(call, api_key, ctx):
    api_key.allowed_ips = "10.1.2.3"
    api_key.save()
    ctx.keys.invalidate(api_key.key)
    assert call("test.hello")["api"]["code"] == "111"


def test_getlist_answers_without_a_key(client):
    result = client.simulate_get("/api/api.methods.getList")
    names = [m["name"] for m in result.json["methods"]["method"]]
    assert "test.hello" in names and names == sorted(names)


def test_methods_get_unknown_is_code_1(call):
    assert call("api.methods.get", method="no.such")["api"]["code"] == "1"


def test_methods_get_shape(call):
    method = call("api.methods.get", method="test.echo")["method"]
    assert method["name"] == "test.echo" and method["service"] == "test"
    assert method["authentication"] == {"token": "0", "sign": "0", "post": "0"}
    assert method["permissions"] == ""
    assert method["parameters"][1] == {"name": "echo", "required": "1",
                                       "value": "Some text we will echo back to you."}
    assert method["response"] == "<echo>yes, it worked</echo>"
    assert {"code": "100", "label": "api_key_missing", "message": "API Key is missing",
            "_value": "Please add the api_key parameter to this request."} in (
        method["errors"]["error"])


def test_getlist_flags_match_the_original_registry(call):
    """Every method we answer carries exactly the flags and permissions of the live dump."""
    import importlib.resources

    original = json.loads(importlib.resources.files("ipernity").joinpath("methods.json")
                          .read_text())
    for method in call("api.methods.getList")["methods"]["method"]:
        if method["name"] in original:
            theirs = original[method["name"]]
            assert method["authentication"] == theirs["authentication"], method["name"]
            assert method["permissions"] == theirs["permissions"], method["name"]
            assert method["service"] == theirs["service"], method["name"]
            assert method["title"] == theirs["title"], method["name"]


def test_getlist_lists_all_102_methods(call):
    methods = call("api.methods.getList")["methods"]
    assert len(methods["method"]) == 102


# -- transport ------------------------------------------------------------------------------


def test_post_urlencoded_and_query_merge(client, api_key):
    result = client.simulate_post("/api/test.echo", query_string=f"api_key={api_key.key}",
                                  body="echo=caf%C3%A9+au+lait",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.json["echo"] == "café au lait"


def test_every_method_accepts_multipart(call):
    assert call("test.echo", files={"unused": ("a.txt", b"x")}, echo="multi")["echo"] == "multi"


@pytest.mark.parametrize("query", ["echo=%zz", "echo=%C3%28", "echo=%", "echo=a%2", "echo=a%00b",
                                   "echo=a\x00b"])
def test_malformed_query_is_140(client, api_key, query):
    result = client.simulate_get("/api/test.echo", query_string=f"api_key={api_key.key}&{query}")
    assert result.status_code == 200
    assert result.json["api"] == {"status": "error", "code": "140", "message": "Malformed request"}


def test_bad_utf8_body_is_140(client, api_key):
    result = client.simulate_post("/api/test.echo/xml", query_string=f"api_key={api_key.key}",
                                  body=b"echo=\xff\xfe",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert b'code="140"' in result.content


def test_nul_in_a_multipart_field_is_140(call):
    result = call.raw("test.echo", files={"unused": ("a", b"x")}, echo="a\x00b")
    assert result.json["api"]["code"] == "140"


def test_broken_multipart_is_140(client, api_key):
    result = client.simulate_post("/api/test.echo", query_string=f"api_key={api_key.key}",
                                  body=b"--xx\r\nnot a part",
                                  headers={"Content-Type": "multipart/form-data; boundary=xx"})
    assert result.json["api"]["code"] == "140"


def test_oversized_body_is_141(settings, ctx, api_key):
    small = create_app(settings.with_(max_body_bytes=100), ctx=dataclasses.replace(
        ctx, settings=settings.with_(max_body_bytes=100)))
    result = falcon.testing.TestClient(small).simulate_post(
        "/api/test.echo", query_string=f"api_key={api_key.key}", body="echo=" + "x" * 200,
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert result.json["api"]["code"] == "141"


# -- JSONP ----------------------------------------------------------------------------------


def test_jsonp(call):
    result = call.raw("test.hello", callback="cb")
    assert result.text == '/**/cb({"hello":"hello world!","api":{"status":"ok"}});'
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.headers["content-type"] == "text/javascript; charset=utf-8"


@pytest.mark.parametrize("callback", ["alert(1)", "1abc", "a" * 101, "", "a-b", "é"])
def test_jsonp_bad_callback_is_an_error_in_plain_json(call, callback):
    result = call.raw("test.hello", callback=callback)
    assert result.json["api"]["code"] == "142"
    assert result.headers["content-type"].startswith("application/json")


def test_jsonp_refused_with_auth_token(call, member, token_for):
    token = token_for(member, doc="read")
    assert call("test.hello", token=token, callback="cb")["api"]["code"] == "142"


# -- usage and access log -------------------------------------------------------------------


def test_usage_counted_in_memory_then_flushed(call, ctx, api_key, clock):
    for _ in range(3):
        call("test.hello")
    call("test.echo")
    assert UsageCounter.select().count() == 0  # no database write per call
    assert ctx.usage.flush() == 2
    rows = {(r.method, r.code): r.calls for r in UsageCounter.select()}
    assert rows == {("test.hello", 0): 3, ("test.echo", 1): 1}
    call("test.hello")
    ctx.usage.flush()
    assert UsageCounter.get(method="test.hello").calls == 4
    assert store.ApiKey.get(key=api_key.key).last_used_at == int(clock())


def test_access_log_has_no_secret_signature_or_token(settings, ctx, api_key, member, token_for):
    stream = io.StringIO()
    logged = dataclasses.replace(ctx, access_log=AccessLog(stream, clock=ctx.clock))
    from tests.conftest import Caller

    caller = Caller(falcon.testing.TestClient(create_app(settings, ctx=logged)), ctx, api_key)
    token = token_for(member, doc="read")
    caller("test.echo", token=token, echo="hi")
    caller("test.hello", key=None, api_key="")
    assert stream.getvalue() == ""  # buffered, written in batches
    logged.access_log.flush()
    first, second = stream.getvalue().splitlines()
    assert first.startswith("2027-01-15T08:00:00Z 127.0.0.1 key=" + api_key.key)
    assert first.endswith(" method=test.echo format=json code=0 ms=" + first.split("ms=")[1])
    assert " key=- method=test.hello format=json code=100 " in second
    text = stream.getvalue()
    assert api_key.secret not in text and token not in text and "api_sig" not in text
    assert "hi" not in text.replace("hello", "")  # parameter values are not logged


def test_json_log_lines_have_no_secret_signature_token_password_or_cookie(
        settings, ctx, api_key, owner, member, token_for):
    """API_LOG_FORMAT=json: one line per HTTP request, API calls, pages and media alike, and
    still nothing a caller could use: no secret, api_sig, token, password, session cookie or
    media secret (the route's template is logged, never the path)."""
    from api.media.names import media_path
    from api.models.docs import Doc
    from api.runtime.http_log import JsonAccessLog
    from tests.auth.conftest import Browser
    from tests.conftest import Caller
    from tests.upload.conftest import jpeg

    stream = io.StringIO()
    logged = dataclasses.replace(ctx, access_log=JsonAccessLog(stream, clock=ctx.clock))
    client = falcon.testing.TestClient(create_app(settings.with_(log_format="json"), ctx=logged))
    caller = Caller(client, ctx, api_key)
    token = token_for(member, doc="write")
    caller("test.echo", token=token, echo="hi")  # signed: api_sig and auth_token sent
    caller("test.hello", key=None, api_key="")
    caller("upload.file", token=token_for(owner, doc="write"), files={"file": ("a.jpg", jpeg())})
    ctx.uploads.process_pending()
    doc = Doc.get()
    media = client.simulate_get(media_path(doc.id, doc.secret, "240", "jpg"))
    assert media.status_code == 200
    browser = Browser(client)
    assert browser.login("owner", "owner-password").status_code == 303
    session = dict(browser.cookies)
    assert session and browser.get("/apps/keys").status_code == 200
    assert stream.getvalue() == ""  # buffered, written in batches
    logged.access_log.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    routes = [(line["method"], line["route"], line["status"]) for line in lines]
    assert routes == [("GET", "/api/{method}/{fmt}", 200)] * 2 + [
        ("POST", "/api/{method}/{fmt}", 200), ("GET", "/media/{d2}/{d1}/{name}", 200),
        ("GET", "/login", 200), ("POST", "/login", 303), ("GET", "/apps/keys", 200)]
    echo, keyless, upload, picture = lines[:4]
    assert (echo["api_method"], echo["api_code"], echo["api_key"], echo["format"]) == (
        "test.echo", 0, api_key.key, "json")
    assert (keyless["api_method"], keyless["api_code"], keyless["api_key"]) == (
        "test.hello", 100, None)
    assert upload["api_method"] == "upload.file" and "api_method" not in picture
    assert picture["bytes"] == len(media.content) and picture["client"] == "127.0.0.1"
    assert all(line["request_id"] and line["ms"] >= 0 for line in lines)
    text = stream.getvalue()
    for never in (api_key.secret, token, "api_sig", "owner-password", doc.secret,
                  doc.original_secret, *session.values()):
        assert never not in text, never
    assert "hi" not in text.replace("hello", "").replace("host", "")


def spooled(settings):
    return sorted(path for path in (Path(settings.data_dir) / "spool").rglob("*") if path.is_file())


def test_file_parts_never_outlive_the_call(call, client, settings):
    call("test.echo", files={"file": ("a.bin", b"x" * 1000)}, echo="one")
    call("test.echo", files={"other": ("b.bin", b"y" * 1000)}, echo="two")
    assert spooled(settings) == []


def test_two_file_parts_are_140_and_leave_nothing(client, settings, api_key):
    key = (b'--xyz\r\nContent-Disposition: form-data; name="api_key"\r\n\r\n'
           + api_key.key.encode() + b"\r\n")  # without a key the first file part ends it (100)
    part = (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
            + b"1" * 5000 + b"\r\n")
    result = client.simulate_post("/api/test.echo", body=key + part * 30 + b"--xyz--\r\n",
                                  headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert result.json["api"]["code"] == "140"
    assert spooled(settings) == []


@pytest.mark.parametrize("disposition", ["form-data", 'form-data; name=""'])
def test_a_part_without_a_name_is_140(call, api_key, client, disposition):
    boundary = "xyz"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\n"
            f"{api_key.key}\r\n--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n"
            f"junk\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"api_sig\"\r\n\r\n"
            f"{'0' * 32}\r\n--{boundary}--\r\n").encode()
    result = client.simulate_post("/api/test.hello", body=body, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert result.status_code == 200
    assert result.json["api"]["code"] == "140"


def test_public_url_is_the_base_of_handed_out_links():
    from api.core.transport import read_request

    request = falcon.testing.create_req(path="/api/test.hello")
    assert read_request(request, "test.hello", None, 100,
                        public_url="https://api.example.org").base_url == (
        "https://api.example.org")
    assert read_request(request, "test.hello", None, 100).base_url == "http://falconframework.org"


# --- issue 7: the live service's leniency ------------------------------------------------------

@pytest.mark.parametrize("sent, value", [("1", "1"), ("0", "0"), ("True", "1"), ("true", "1"),
                                         ("TRUE", "1"), ("False", "0"), ("fAlSe", "0"),
                                         (" true ", "1")])
def test_flags_take_true_and_false_in_any_case(probe_call, sent, value):
    assert probe_call("probe.list", flag=sent)["items"]["flag"] == value


@pytest.mark.parametrize("sent", ["yes", "2", "t", "on"])
def test_other_flag_values_are_the_methods_invalid_error(probe_call, sent):
    assert probe_call("probe.list", flag=sent)["api"]["code"] == "1"


def test_per_page_above_the_maximum_is_lowered_and_said(probe_call):
    items = probe_call("probe.list", per_page=500, page=2)["items"]
    assert (items["per_page"], items["page"]) == ("50", "2")
    assert probe_call("probe.list", per_page=50)["items"]["per_page"] == "50"
    assert probe_call("probe.list")["items"]["per_page"] == "10"
    # a positive integer too large for a database column is still just "too many": lowered
    assert probe_call("probe.list", per_page="99999999999999")["items"]["per_page"] == "50"


@pytest.mark.parametrize("params", [{"per_page": 0}, {"per_page": -5}, {"per_page": "abc"},
                                    {"per_page": "1.5"}, {"per_page": "\u0661\u0660"},
                                    {"page": 0}, {"page": "x"}, {"page": -1}])
def test_paging_values_that_are_not_positive_integers_are_143(probe_call, params):
    assert probe_call("probe.list", **params)["api"]["code"] == "143"


def test_a_token_on_a_token_optional_method_names_the_caller(probe_call, token_for, member):
    token = token_for(member, doc="read")
    assert probe_call("probe.list", token=token)["items"]["user"] == "member"
    assert probe_call("probe.list")["items"]["user"] == ""


def allow(ctx, api_key, *networks: str) -> None:
    store.set_allowed_networks(api_key.key, networks)
    ctx.keys.invalidate(api_key.key)


@pytest.mark.parametrize("networks, address, code", [
    (["10.0.0.0/8"], "10.200.3.4", 0), (["10.0.0.0/8"], "11.0.0.1", 111),
    (["192.0.2.7"], "192.0.2.7", 0), (["192.0.2.7"], "192.0.2.8", 111),
    (["2001:db8::/32"], "2001:db8:1::5", 0), (["2001:db8::/32"], "2001:db9::5", 111),
    (["::1"], "::1", 0), (["10.0.0.0/8"], "::ffff:10.1.1.1", 0),  # a dual-stack socket's IPv4
    (["10.0.0.0/8"], "::a00:1", 111), (["10.0.0.0/8", "2001:db8::/32"], "2001:db8::1", 0),
    (["10.0.0.0/8"], "", 111), (["10.0.0.0/8"], "not-an-address", 111),
])
def test_allowed_addresses_are_ranges_of_either_family(client, ctx, api_key, networks, address,
                                                       code):
    allow(ctx, api_key, *networks)
    result = client.simulate_get("/api/test.hello", params={"api_key": api_key.key},
                                 remote_addr=address)
    assert int(result.json["api"].get("code", 0)) == code


def test_an_unparsable_stored_entry_never_opens_the_key(client, ctx, api_key):
    api_key.allowed_ips = "10.0.0.0/33, nonsense"  # written by hand in the database
    api_key.save()
    ctx.keys.invalidate(api_key.key)
    result = client.simulate_get("/api/test.hello", params={"api_key": api_key.key})
    assert result.json["api"]["code"] == "111"
    allow(ctx, api_key)  # an empty list allows every address again
    result = client.simulate_get("/api/test.hello", params={"api_key": api_key.key})
    assert result.json["hello"] == "hello world!"


def multipart(parts: list[tuple[str, str | None, bytes]]) -> tuple[dict[str, str], bytes]:
    """Headers and body for ``(name, filename or None, data)`` parts, in the order given."""
    boundary = "----issue7boundary"
    chunks = []
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else "")
        chunks.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                      + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, b"".join(chunks)


def echo_with_text_file_field(client, api_key, *, sign_file_field: bool):
    """test.echo as ipernity-api 0.13 shapes an upload: the text ``file=<local path>`` among the
    fields, then the file part with a filename."""
    fields = {"api_key": api_key.key, "echo": "hi", "file": "/home/me/photo.jpg"}
    signed = fields if sign_file_field else {k: v for k, v in fields.items() if k != "file"}
    fields["api_sig"] = md5.signature(signed, "test.echo", api_key.secret)
    headers, body = multipart([(k, None, v.encode()) for k, v in fields.items()]
                              + [("file", "photo.jpg", b"\xff\xd8 image bytes")])
    return client.simulate_post("/api/test.echo", body=body, headers=headers)


def test_a_text_file_field_is_a_signed_parameter_beside_the_file_part(client, api_key, settings):
    result = echo_with_text_file_field(client, api_key, sign_file_field=True)
    # The signature holds with the text field in it (105 otherwise); test.echo takes no file, so
    # the signed call is then refused for it (146: upload.file and upload.replace take one).
    assert result.json["api"]["code"] == "146"
    assert result.json["api"]["message"] == "Unknown parameter (file)"
    assert spooled(settings) == []
    # No client we know sends the text field without signing it: that signature is wrong.
    result = echo_with_text_file_field(client, api_key, sign_file_field=False)
    assert result.json["api"]["code"] == "105"


def test_only_a_part_with_a_filename_is_the_file(ctx, api_key):
    from api.core.transport import read_request

    headers, body = multipart([("file", None, b"/tmp/a.jpg"), ("file", "a.jpg", b"JPEG"),
                               ("other", "", b"drained, never kept")])
    request = falcon.testing.create_req(path="/api/test.echo", method="POST", body=body,
                                        headers=headers)
    read = read_request(request, "test.echo", None, 10_000)
    assert read.transport_error is None
    assert read.params == {"file": "/tmp/a.jpg"}
    assert list(read.files) == ["file"] and read.files["file"].filename == "a.jpg"
    assert open(read.files["file"].path, "rb").read() == b"JPEG"
    from api.core.transport import discard_files

    discard_files(dict(read.files))


def test_an_empty_filename_still_makes_a_file_part(client, api_key):
    headers, body = multipart([("api_key", None, api_key.key.encode()), ("file", "", b"x"),
                               ("file", "b.jpg", b"y")])
    assert client.simulate_post("/api/test.echo", body=body, headers=headers).json["api"][
        "code"] == "140"  # two file parts, as before


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_unexpected_failure_logs_no_path_query_or_media_secret(
        settings, ctx, monkeypatch, caplog, capsys, log_format):
    """A media GET while the database is down (Doc.get_or_none raising, with a message naming
    the file): falcon's default handler wrote `GET /media/…/<doc>.<secret>.<label>.jpg?query =>
    Traceback…` to wsgi.errors. Now: a 500 without a traceback, one record through `logging`
    with the route's template, neither path, query string nor the exception's message; in JSON
    mode the access line too, with the request id."""
    from peewee import OperationalError

    from api.media import route
    from api.media.names import media_path
    from api.runtime.http_log import JsonAccessLog, JsonFormatter

    secret, query = "5ec2e7aa5ec2e7bb", "sig=QUERYSECRET"
    path = media_path(4321, secret, "240", "jpg")

    def outage(*args, **kwargs):
        message = f"could not read {path}: server closed the connection"
        raise OperationalError(message)  # (a traceback shows this line, never the message)

    monkeypatch.setattr(route.Doc, "get_or_none", outage)
    stream = io.StringIO()
    logged = dataclasses.replace(
        ctx, access_log=JsonAccessLog(stream, clock=ctx.clock) if log_format == "json" else None)
    client = falcon.testing.TestClient(create_app(settings.with_(log_format=log_format),
                                                  ctx=logged))
    errors, records = io.StringIO(), io.StringIO()
    caplog.set_level(logging.INFO)
    handler = logging.StreamHandler(records)  # as configure_logging's, while the request runs
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter())
    logging.getLogger("api.errors").addHandler(handler)
    try:
        answers = [client.simulate_get(path, query_string=query, wsgierrors=errors),
                   client.simulate_get(path, query_string=query, wsgierrors=errors,
                                       headers={"Accept": "text/html"})]
    finally:
        logging.getLogger("api.errors").removeHandler(handler)
    for answer in answers:
        assert answer.status_code == 500
        assert answer.json == {"title": "500 Internal Server Error"}  # a file route: JSON
        assert "Traceback" not in answer.text and secret not in answer.text
    assert len([r for r in caplog.records if r.name == "api.errors"]) == 2
    formatted = records.getvalue().split("\n", 1) if log_format == "text" else (
        records.getvalue().splitlines())
    assert "/media/{d2}/{d1}/{name}" in formatted[0] and "OperationalError" in formatted[0]
    assert "Traceback" in records.getvalue()  # the frames, for whoever debugs it
    if log_format == "json":
        record = json.loads(formatted[0])
        assert record["request_id"] == answers[0].headers["x-request-id"]
        logged.access_log.flush()
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [(line["route"], line["status"]) for line in lines] == [
            ("/media/{d2}/{d1}/{name}", 500)] * 2
    captured = capsys.readouterr()
    everything = "".join([errors.getvalue(), caplog.text, *formatted, stream.getvalue(),
                          captured.out, captured.err])
    for never in (secret, "QUERYSECRET", path, "server closed"):
        assert never not in everything, never


def test_an_unexpected_failure_on_a_page_answers_the_error_page(settings, ctx, monkeypatch):
    """A page failing outside the Page base's own net (its responder replaced): the site's
    error page, 500; falcon's HTTPError answers (404 here) unchanged."""
    from api.web import home

    def broken(self, req, resp):
        raise RuntimeError("boom")

    monkeypatch.setattr(home.Home, "on_get", broken)
    client = falcon.testing.TestClient(create_app(settings, ctx=ctx))
    answer = client.simulate_get("/", headers={"Accept": "text/html"})
    assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    assert "Something went wrong on our side" in answer.text and "boom" not in answer.text
    missing = client.simulate_get("/no/such/page", headers={"Accept": "application/json"})
    assert missing.status_code == 404 and missing.json["title"] == "404 Not Found"
