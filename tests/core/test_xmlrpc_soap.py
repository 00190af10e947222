"""XML-RPC at /api/xmlrpc and SOAP at /api/soap (spec §2.5-2.6, issue 14): real clients
(``xmlrpc.client.ServerProxy``, zeep) through a live server, the same pipeline and signing rules,
faults with the API code, and hostile envelopes answered with a clean fault."""

from __future__ import annotations

import logging
import time
import xmlrpc.client
from typing import Any
from xml.etree import ElementTree

import pytest
import requests
import zeep
from lxml import etree

from api.core import envelopes
from api.core.envelopes import MAX_DEPTH, MAX_ELEMENTS, MAX_PARAMS, Refused, parse
from api.formats.soap import IPERNITY, SOAP12
from api.models.docs import Doc
from api.signing import md5
from keys.models import UsageCounter

BILLION_LAUGHS = "".join([
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">',
    *(f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
      for n in range(1, 10)), "]>"])
EXTERNAL_ENTITY = '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'


def signed(key: Any, method: str, *, token: str | None = None, secret: str | None = None,
           **params: str) -> dict[str, str]:
    """``params`` with api_key, auth_token and an api_sig over them (spec §4)."""
    values = {"api_key": key.key, **params, **({"auth_token": token} if token else {})}
    values["api_sig"] = md5.signature(values, method, secret or key.secret)
    return values


def xmlrpc_body(method: str, params: dict[str, str] | None = None, *, head: str = "") -> bytes:
    """A methodCall as ``xmlrpc.client`` writes it, after ``head`` (a prolog and DTD)."""
    call = xmlrpc.client.dumps((params,) if params is not None else (), method)
    return (head + call.replace("<?xml version='1.0'?>", "")).encode()


def soap_body(method: str, params: dict[str, str], *, head: str = "") -> bytes:
    """The SOAP request as spec §2.5 shows it, after ``head``."""
    envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"s": SOAP12})
    request = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP12}}}Body"),
                               f"{{{IPERNITY}}}ipernityRequest", nsmap={"x": IPERNITY})
    for name, value in {"method": method, **params}.items():
        etree.SubElement(request, name).text = value
    return head.encode() + etree.tostring(envelope)


def echo_call(value: str, api_key: Any = None) -> bytes:
    """A test.echo methodCall whose ``echo`` member's ``<value>`` holds ``value`` as written."""
    key = f"<member><name>api_key</name><value>{api_key.key}</value></member>" if api_key else ""
    return (f"<methodCall><methodName>test.echo</methodName><params><param><value><struct>{key}"
            f"<member><name>echo</name><value>{value}</value></member>"
            f"</struct></value></param></params></methodCall>").encode()


def xmlrpc_result(body: bytes) -> Any:
    """The answer of an XML-RPC call: the parsed ``<api>`` document, or the Fault raised."""
    (payload,), _ = xmlrpc.client.loads(body)
    return ElementTree.fromstring(payload)


def soap_fault(body: bytes) -> tuple[str, str]:
    """(faultcode, faultstring) of a SOAP fault answer."""
    fault = etree.fromstring(body).find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault")
    return fault.findtext("faultcode"), fault.findtext("faultstring")


def fault_code(body: bytes) -> int:
    with pytest.raises(xmlrpc.client.Fault) as raised:
        xmlrpc.client.loads(body)
    return raised.value.faultCode


@pytest.fixture
def private_doc(member):
    """A private document of ``member``: only a call with member's token sees it."""
    return Doc.create(owner=member, title="Only mine", is_public=False, secret="0123abcd",
                      original_secret="4567cdef")


# -- real clients against a live server ---------------------------------------------------------

def test_server_proxy_echo_signed_doc_get_and_a_wrong_signature(live_server, api_key, member,
                                                                 token_for, private_doc):
    proxy = xmlrpc.client.ServerProxy(f"{live_server.base_url}/api/xmlrpc")
    answer = ElementTree.fromstring(proxy.test.echo({"api_key": api_key.key, "echo": "Hallo!"}))
    assert (answer.get("status"), answer.findtext("echo")) == ("ok", "Hallo!")

    token = token_for(member, doc="read")
    answer = ElementTree.fromstring(proxy.doc.get(signed(api_key, "doc.get", token=token,
                                                         doc_id=str(private_doc.id))))
    assert answer.find("doc").get("title") == "Only mine"

    with pytest.raises(xmlrpc.client.Fault) as raised:
        proxy.doc.get(signed(api_key, "doc.get", token=token, secret="0" * 32,
                             doc_id=str(private_doc.id)))
    assert (raised.value.faultCode, raised.value.faultString) == (105, "Signature is invalid")


def test_zeep_echo_signed_doc_get_and_a_wrong_signature(live_server, api_key, member, token_for,
                                                       private_doc):
    """zeep reads the WSDL at /api/soap?wsdl; parameters are the operation's xsd:any children."""
    client = zeep.Client(f"{live_server.base_url}/api/soap?wsdl")

    def ipernity(method: str, params: dict[str, str]) -> Any:
        children = []
        for name, value in params.items():
            children.append(etree.Element(name))
            children[-1].text = value
        return ElementTree.fromstring(client.service.ipernityRequest(method=method,
                                                                     _value_1=children))

    answer = ipernity("test.echo", {"api_key": api_key.key, "echo": "Hallo!"})
    assert answer.findtext("echo") == "Hallo!"
    token = token_for(member, doc="read")
    answer = ipernity("doc.get", signed(api_key, "doc.get", token=token,
                                        doc_id=str(private_doc.id)))
    assert answer.find("doc").get("title") == "Only mine"
    with pytest.raises(zeep.exceptions.Fault) as raised:
        ipernity("doc.get", signed(api_key, "doc.get", token=token, secret="0" * 32,
                                   doc_id=str(private_doc.id)))
    assert raised.value.message == "Signature is invalid"
    assert [code.localname for code in raised.value.subcodes] == ["ipernity.error.105"]


@pytest.mark.parametrize("path, body, code", [
    ("/api/xmlrpc", xmlrpc_body("test.echo", {"echo": "&lol9;"}, head=BILLION_LAUGHS), 122),
    ("/api/soap", soap_body("test.echo", {"echo": "&lol9;"}, head=BILLION_LAUGHS), 121)])
def test_a_billion_laughs_gets_a_clean_fault(live_server, path, body, code):
    answer = requests.post(live_server.base_url + path, data=body.replace(b"&amp;", b"&"),
                           timeout=10)
    assert answer.status_code == 200
    if code == 122:
        assert fault_code(answer.content) == 122
    else:
        assert soap_fault(answer.content) == ("ipernity.error.121", "Invalid SOAP envelope")


# -- the transport, through the TestClient ------------------------------------------------------

@pytest.mark.parametrize("head", [BILLION_LAUGHS, EXTERNAL_ENTITY,
                                  '<?xml version="1.0"?>\n<!DOCTYPE methodCall>'])
def test_dtds_entities_and_external_entities_are_refused(client, api_key, head):
    body = xmlrpc_body("test.echo", {"api_key": api_key.key, "echo": "x"}, head=head)
    assert fault_code(client.simulate_post("/api/xmlrpc", body=body).content) == 122
    body = soap_body("test.echo", {"api_key": api_key.key, "echo": "x"}, head=head)
    result = client.simulate_post("/api/soap", body=body)
    assert soap_fault(result.content)[0] == "ipernity.error.121"


@pytest.mark.parametrize("body, reason", [
    (BILLION_LAUGHS + "<a>&lol9;</a>", "DTDForbidden"),
    (EXTERNAL_ENTITY + "<a>&e;</a>", "DTDForbidden"),
    ("<a>" * (MAX_DEPTH + 1) + "</a>" * (MAX_DEPTH + 1), "nested deeper"),
    ("<a>" + "<b/>" * MAX_ELEMENTS + "</a>", "elements"),
    ('<?xml version="1.0" encoding="bogus"?><a/>', "unknown encoding"),
    ('<?xml version="1.0" encoding="shift_jis"?><a/>', "not read"),
    (f'<?xml version="1.0"{" " * 1024}?><a/>', "declaration longer"),
    ("<a>caf\xe9</a>", "ParseError")])
def test_the_parser_refuses_while_reading(body, reason):
    with pytest.raises(Refused, match=reason):
        parse(body.encode("latin-1"))


def _nested(depth: int) -> str:
    return "<value><struct><member><name>a</name>" * depth + "</member></struct></value>" * depth


@pytest.mark.parametrize("body", [
    b"",
    b"not xml",
    b"<methodCall><methodName>test.echo</methodName>",  # unclosed
    "<methodCall><methodName>test.\xe9cho</methodName></methodCall>".encode("latin-1"),  # bad UTF-8
    b"<methodCall><methodName>a</methodName><params><param>" + _nested(MAX_DEPTH).encode()
    + b"</param></params></methodCall>",
    xmlrpc_body("test.echo", {f"p{n}": "x" for n in range(MAX_PARAMS + 1)}),
    b"<methodResponse/>",
    b"<methodCall><params/></methodCall>",  # no methodName
    xmlrpc_body("test.echo", None).replace(b"<params>", b"<params><param><value>a</value></param>"
                                           b"<param><value>b</value></param>"),  # two params
    b"<methodCall><methodName>test.echo</methodName><params><param><value><string>a</string>"
    b"</value></param></params></methodCall>",  # a param that is no struct
    b"<methodCall><methodName>test.hello</methodName><methodName>doc.delete</methodName>"
    b"</methodCall>",  # two methodNames
    xmlrpc_body("test.echo", {"echo": "a"}).replace(b"</methodCall>",
                                                    b"<params/></methodCall>"),  # two params
    xmlrpc_body("test.echo", {"echo": "a"}).replace(b"</methodName>", b"</methodName>x"),
    xmlrpc_body("test.echo", {"echo": "a"}).replace(b"<params>", b"<params>x"),
    xmlrpc_body("test.echo", {"echo": "a"}).replace(b"<param>", b"<param>x"),
    xmlrpc_body("test.echo", {"echo": "a"}).replace(b"<struct>", b"<struct>x"),
    xmlrpc_body("test.echo", {"echo": "a"}).replace(b"</name>", b"</name>x"),
])
def test_malformed_xmlrpc_envelopes_are_122(client, body):
    result = client.simulate_post("/api/xmlrpc", body=body)
    assert (result.status_code, fault_code(result.content)) == (200, 122)


@pytest.mark.parametrize("value, sent", [
    ("<int>42</int>", "42"), ("<i4> -7 </i4>", "-7"), ("<int>+007</int>", "7"),
    ("<i8>9007199254740993</i8>", "9007199254740993"), ("<boolean>1</boolean>", "1"),
    ("<boolean>0</boolean>", "0"), ("<double>48.85</double>", "48.85"),
    ("<double>1e-05</double>", "1e-05"), ("<string> a b </string>", " a b "),
    ("untyped", "untyped")])
def test_scalar_values_arrive_in_their_string_forms(client, api_key, value, sent):
    body = echo_call(value, api_key)
    assert client.simulate_post("/api/xmlrpc/json", body=body).json["echo"] == sent


@pytest.mark.parametrize("value", [
    "<array><data><value>1</value></data></array>", "<struct></struct>", "<base64>aGk=</base64>",
    "<dateTime.iso8601>20260101T00:00:00</dateTime.iso8601>", "<nil/>", "<int>4.2</int>",
    "<int>1_000</int>", "<boolean>true</boolean>", "<double>nan</double>", "<double>inf</double>",
    "<string>a</string><string>b</string>", "<string><b>x</b></string>", "<double>1e999</double>",
    "<string>a</string>EXTRA", "EXTRA<string>a</string>", "<int>1</int>2"])
def test_other_values_are_refused_with_122(client, api_key, value):
    assert fault_code(client.simulate_post("/api/xmlrpc", body=echo_call(value)).content) == 122


DIGITS = "1" * 100_000


@pytest.mark.parametrize("kind", ["int", "i4", "i8", "double", "boolean"])
@pytest.mark.parametrize("text", [DIGITS + "x", DIGITS, f".{DIGITS}x", f"{DIGITS}.{DIGITS}x",
                                  f"{DIGITS}e1x", f"{' ' * 50_000}1{' ' * 50_000}x",
                                  f"-{DIGITS}-"])
def test_long_typed_values_are_refused_in_linear_time(client, kind, text):
    """A number is checked in time linear in its length (a backtracking pattern took 8 s for
    20,000 digits, before any key check): 100,000 digits are refused well within a second."""
    started = time.perf_counter()
    result = client.simulate_post("/api/xmlrpc", body=echo_call(f"<{kind}>{text}</{kind}>"))
    assert time.perf_counter() - started < 1
    assert fault_code(result.content) == 122


@pytest.mark.parametrize("body", [
    b"",
    b"<s:Envelope xmlns:s='urn:not-soap'><s:Body/></s:Envelope>",
    f"<s:Envelope xmlns:s='{SOAP12}'><s:Header/></s:Envelope>".encode(),  # no Body
    f"<s:Envelope xmlns:s='{SOAP12}'><s:Body><x:other xmlns:x='urn:ipernity'/></s:Body>"
    "</s:Envelope>".encode(),
    soap_body("test.echo", {"echo": "a"}).replace(b"<echo>a</echo>", b"<echo><b>a</b></echo>"),
    soap_body("test.echo", {"echo": "a"}).replace(b"<echo>a</echo>", b"<echo>a</echo>" * 2),
    soap_body("test.echo", {f"p{n}": "x" for n in range(MAX_PARAMS + 1)}),
    soap_body("test.hello", {}).replace(b"</s:Envelope>", b"<s:Body/></s:Envelope>"),  # two Bodies
    soap_body("test.hello", {}).replace(b"</s:Body>", b"</s:Body><s:Header/>"),
    soap_body("test.hello", {}).replace(b"</s:Body>", b"</s:Body><other/>"),
    soap_body("test.hello", {}).replace(b"<s:Body>", b"x<s:Body>"),
    soap_body("test.hello", {}).replace(b"<s:Body>", b"<s:Body>x"),
    soap_body("test.echo", {"echo": "a"}).replace(b"<echo>", b"x<echo>"),
    *(soap_body("test.hello", {}).replace(b"<s:Body>", f"<s:Header><h:t xmlns:h='urn:h' "
                                          f"s:mustUnderstand='{flag}'/></s:Header><s:Body>".encode())
      for flag in ("true", "1", " 1 ")),
])
def test_malformed_soap_envelopes_are_121(client, body):
    result = client.simulate_post("/api/soap", body=body)
    assert result.status_code == 200
    assert soap_fault(result.content) == ("ipernity.error.121", "Invalid SOAP envelope")


def test_soap_1_1_envelopes_and_qualified_parameters_are_read_alike(client, api_key):
    body = (b"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'><e:Body>"
            b"<x:ipernityRequest xmlns:x='urn:ipernity'><x:method> test.echo </x:method>"
            b"<x:api_key>" + api_key.key.encode() + b"</x:api_key><echo>1.1</echo>"
            b"</x:ipernityRequest></e:Body></e:Envelope>")
    assert client.simulate_post("/api/soap/json", body=body).json["echo"] == "1.1"


@pytest.mark.parametrize("header", [
    "<s:Header/>", "<s:Header><h:t xmlns:h='urn:h'>x</h:t></s:Header>",
    "<s:Header><h:t xmlns:h='urn:h' s:mustUnderstand='false'/></s:Header>"])
def test_headers_nobody_must_understand_are_ignored(client, api_key, header):
    body = soap_body("test.echo", {"api_key": api_key.key, "echo": "h"}).replace(
        b"<s:Body>", header.encode() + b"<s:Body>")
    assert client.simulate_post("/api/soap/json", body=body).json["echo"] == "h"


UNREADABLE_ENCODINGS = ["shift_jis", "euc-jp", "gb2312", "big5", "utf-7", "utf-32", "idna",
                        "undefined", "punycode", "iso2022_jp", "hz", "unicode_escape",
                        "utf-8-sig", "base64", "no-such-charset", "x" * 100]


@pytest.mark.parametrize("encoding", UNREADABLE_ENCODINGS)
def test_a_declared_encoding_expat_cannot_read_is_the_envelope_error(client, api_key, encoding):
    """Multi-byte charsets other than UTF-8/16, stateful ones and codecs that are no charset
    are refused (122, 121), never a 500 (pyexpat raised ValueError or UnicodeError)."""
    head = f'<?xml version="1.0" encoding="{encoding}"?>'
    params = {"api_key": api_key.key, "echo": "x"}
    result = client.simulate_post("/api/xmlrpc", body=xmlrpc_body("test.echo", params, head=head))
    assert (result.status_code, fault_code(result.content)) == (200, 122)
    result = client.simulate_post("/api/soap", body=soap_body("test.echo", params, head=head))
    assert (result.status_code, soap_fault(result.content)[0]) == (200, "ipernity.error.121")


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "windows-1252", "iso-8859-15", "koi8-r",
                                      "US-ASCII", "utf-8"])
def test_a_declared_single_byte_charset_is_read(client, api_key, encoding):
    text = "caf\xe9 \u20ac" if encoding in ("windows-1252", "iso-8859-15") else "caf\xe9"
    text = {"koi8-r": "\u043c\u0438\u0440", "US-ASCII": "cafe"}.get(encoding, text)
    call = xmlrpc.client.dumps(({"api_key": api_key.key, "echo": text},), "test.echo")
    body = call.replace("<?xml version='1.0'?>", f"<?xml version='1.0' encoding='{encoding}'?>")
    result = client.simulate_post("/api/xmlrpc/json", body=body.encode(encoding))
    assert result.json["echo"] == text


def test_any_exception_while_reading_is_the_envelope_error_and_logged(client, monkeypatch,
                                                                      caplog):
    """A last resort: whatever escapes the parser is answered with the transport's own error,
    and logged with its class but not its message."""
    detail = "secret detail"

    def broken(body: bytes) -> Any:
        raise RuntimeError(detail)

    monkeypatch.setattr(envelopes, "parse", broken)
    with caplog.at_level(logging.ERROR):
        result = client.simulate_post("/api/xmlrpc", body=xmlrpc_body("test.hello", {}))
        assert (result.status_code, fault_code(result.content)) == (200, 122)
        result = client.simulate_post("/api/soap/json", body=soap_body("test.hello", {}))
        assert (result.status_code, result.json["api"]["code"]) == (200, "121")
    assert "RuntimeError" in caplog.text and detail not in caplog.text


def test_a_carriage_return_reaches_the_signature_only_as_a_reference(client, live_server,
                                                                     api_key):
    """XML turns a raw CR (and CRLF) into LF before we see it: lxml writes ``&#13;``, which
    arrives and verifies; ``xmlrpc.client`` writes the CR raw, so its signature over it fails."""
    params = signed(api_key, "test.echo", echo="a\r\nb")
    assert b"&#13;" in soap_body("test.echo", params)
    result = client.simulate_post("/api/soap/json", body=soap_body("test.echo", params))
    assert result.json["echo"] == "a\r\nb"
    proxy = xmlrpc.client.ServerProxy(f"{live_server.base_url}/api/xmlrpc")
    with pytest.raises(xmlrpc.client.Fault) as raised:
        proxy.test.echo(params)
    assert raised.value.faultCode == 105


def test_a_second_method_element_is_api_methods_get_s_parameter(client, api_key):
    body = soap_body("api.methods.get", {"api_key": api_key.key}).replace(
        b"</x:ipernityRequest>", b"<method>test.echo</method></x:ipernityRequest>")
    answer = client.simulate_post("/api/soap/json", body=body).json
    assert answer["method"]["name"] == "test.echo"


@pytest.mark.parametrize("path, content_type, parse", [
    ("/api/xmlrpc/json", "application/json", lambda r: r.json["echo"]),
    ("/api/xmlrpc/xml", "text/xml", lambda r: ElementTree.fromstring(r.content).findtext("echo")),
    ("/api/soap/json", "application/json", lambda r: r.json["echo"]),
    ("/api/soap/php", "text/plain", lambda r: "s:4:\"echo\";s:2:\"hi\"" in r.text and "hi"),
    ("/api/soap", "application/soap+xml", lambda r: ElementTree.fromstring(etree.fromstring(
        r.content).findtext(f".//{{{IPERNITY}}}ipernityResponse")).findtext("echo")),
    ("/api/xmlrpc", "text/xml", lambda r: xmlrpc_result(r.content).findtext("echo")),
])
def test_a_format_suffix_chooses_the_answer_format(client, api_key, path, content_type, parse):
    params = {"api_key": api_key.key, "echo": "hi"}
    body = (xmlrpc_body if "xmlrpc" in path else soap_body)("test.echo", params)
    result = client.simulate_post(path, body=body)
    assert result.headers["content-type"].startswith(content_type)
    assert parse(result) == "hi"


def test_an_envelope_error_is_answered_in_the_chosen_format(client):
    result = client.simulate_post("/api/soap/json", body=b"<oops/>")
    assert result.json["api"] == {"status": "error", "code": "121",
                                  "message": "Invalid SOAP envelope"}
    assert client.simulate_post("/api/xmlrpc/yaml", body=b"").json["api"]["code"] == "102"


def test_routes_do_not_collide_with_rest_and_get_has_no_envelope(client, api_key):
    """Literal segments win over /api/{method}: REST is untouched; a REST call may still ask for
    the xmlrpc or soap format."""
    assert client.simulate_get("/api/test.hello", params={"api_key": api_key.key}).json[
        "hello"] == "hello world!"
    rest = client.simulate_get("/api/test.hello/xmlrpc", params={"api_key": api_key.key})
    assert xmlrpc_result(rest.content).findtext("hello") == "hello world!"
    assert fault_code(client.simulate_get("/api/xmlrpc").content) == 122
    assert soap_fault(client.simulate_get("/api/soap").content)[0] == "ipernity.error.121"


def test_the_wsdl_names_this_server(client):
    result = client.simulate_get("/api/soap", query_string="wsdl")
    assert result.headers["content-type"].startswith("text/xml")
    address = etree.fromstring(result.content).find(
        ".//{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    assert address.get("location") == "http://falconframework.org/api/soap"


def test_the_query_string_carries_no_parameters(client, api_key):
    result = client.simulate_post("/api/xmlrpc/json", params={"api_key": api_key.key},
                                  body=xmlrpc_body("test.hello", {}))
    assert result.json["api"]["code"] == "100"


def test_post_methods_are_reachable_and_a_file_is_rest_only(call, client, api_key, member,
                                                            token_for):
    """upload.file over an envelope: ``file`` is a text parameter (as a multipart text part),
    so the method answers its own 1; a base64 value is refused (122)."""
    token = token_for(member, doc="write")
    params = signed(api_key, "upload.file", token=token, file="/tmp/a.jpg")
    result = client.simulate_post("/api/xmlrpc", body=xmlrpc_body("upload.file", params))
    assert fault_code(result.content) == 1
    body = xmlrpc_body("upload.file", params).replace(
        b"<string>/tmp/a.jpg</string>", b"<base64>aGk=</base64>")
    assert fault_code(client.simulate_post("/api/xmlrpc", body=body).content) == 122


def test_the_body_is_capped_by_max_form_bytes(ctx, client, api_key):
    """API_MAX_FORM_BYTES bounds an envelope as it bounds a form: 141 beyond, unread."""
    ctx.settings = ctx.settings.with_(max_form_bytes=2048)
    big = {"api_key": api_key.key, "echo": "x" * 2048}
    assert fault_code(client.simulate_post("/api/xmlrpc",
                                           body=xmlrpc_body("test.echo", big)).content) == 141
    small = xmlrpc_body("test.echo", {"api_key": api_key.key, "echo": "x" * 1024})
    assert xmlrpc_result(client.simulate_post("/api/xmlrpc", body=small).content).findtext(
        "echo") == "x" * 1024
    result = client.simulate_post("/api/soap", body=soap_body("test.echo", big))
    assert soap_fault(result.content)[0] == "ipernity.error.141"


def test_the_address_limit_is_spent_first_and_keeps_its_429(client, limit, api_key):
    limit(per_address="1/minute")
    body = xmlrpc_body("test.echo", {"api_key": api_key.key, "echo": "hi"})
    assert xmlrpc_result(client.simulate_post("/api/xmlrpc", body=body).content) is not None
    result = client.simulate_post("/api/xmlrpc", body=b"<not even xml")
    assert (result.status_code, fault_code(result.content)) == (429, 113)
    assert "Retry-After" in result.headers


def test_envelope_calls_are_counted_like_rest_ones(ctx, client, api_key):
    client.simulate_post("/api/xmlrpc", body=xmlrpc_body("test.echo", {"api_key": api_key.key,
                                                                       "echo": "a"}))
    client.simulate_post("/api/soap", body=soap_body("test.echo", {"api_key": api_key.key}))
    ctx.usage.flush()
    rows = {(row.method, row.code): row.calls for row in UsageCounter.select()}
    assert rows == {("test.echo", 0): 1, ("test.echo", 1): 1}


def test_hmac_signs_the_envelope_path(client, api_key, ctx):
    """HMAC-SHA256 (docs/signing.md) covers POST and the path the envelope was sent to."""
    from api.signing import hmac as hmac_sig

    params = {"api_key": api_key.key, "echo": "hi", hmac_sig.METHOD_PARAM: hmac_sig.HMAC_SHA256,
              hmac_sig.TIMESTAMP_PARAM: str(int(ctx.clock())), hmac_sig.NONCE_PARAM: "n" * 16}
    params[hmac_sig.SIGNATURE_PARAM] = hmac_sig.signature("POST", "/api/soap/json", params,
                                                          api_key.secret)
    assert client.simulate_post("/api/soap/json", body=soap_body("test.echo", params)).json[
        "echo"] == "hi"
    params[hmac_sig.NONCE_PARAM] = "m" * 16  # the same signature, sent to another path
    assert client.simulate_post("/api/xmlrpc/json", body=xmlrpc_body("test.echo", params)).json[
        "api"]["code"] == "105"


def test_every_registered_method_is_reachable(ctx, client, api_key):
    """Each method answers over both envelopes as over REST: never 103, 121, 122 or 500."""
    for name in (spec.name for spec in ctx.registry):
        for path, body in (("/api/xmlrpc/json", xmlrpc_body(name, {"api_key": api_key.key})),
                           ("/api/soap/json", soap_body(name, {"api_key": api_key.key}))):
            answer = client.simulate_post(path, body=body).json["api"]
            assert answer.get("code") not in ("103", "121", "122", "500"), (name, path, answer)
