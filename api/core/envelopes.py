"""The XML-RPC and SOAP edges (spec §2.5-2.6): an envelope in a POST body becomes an ``ApiRequest``.

The body is untrusted XML. It is read up to ``max_bytes`` (141 beyond) and parsed by defusedxml
with DTDs refused (and so entity declarations, a billion laughs, and external entities), nesting
deeper than ``MAX_DEPTH`` and more than ``MAX_ELEMENTS`` elements refused while parsing; anything
wrong with it is the transport's own error (122 XML-RPC, 121 SOAP), answered in the request's
format like every API error. A declared encoding is read only when expat reads it right: UTF-8,
UTF-16, ASCII, ISO-8859-1, and single-byte charsets (through Python's tables); multi-byte,
stateful and non-charset codecs are refused. The method name and the parameters come only from
the envelope (never the query string), and are signed as they are read (spec §4). Values are
strings: XML-RPC's ``int``/``i4``/``i8``, ``boolean`` and ``double`` are taken in the string
forms a REST client would send; arrays, structs, base64, dates and nil are refused (no parameter
of this API is one), and so are duplicates (two ``methodName``, ``params`` or SOAP ``Body``),
text between elements, and a SOAP header block marked ``mustUnderstand``. Numbers are checked in
time linear in their length (bounded first): this runs before any key check. Files are
REST-only (multipart): a ``file`` parameter here is text, as a multipart text part is. OAuth is
REST-only too (OAuth 1.0 signs form bodies only, so an envelope's parameters would go unsigned):
an envelope call is judged by ``api_key`` and ``api_sig``.
"""

from __future__ import annotations

import codecs
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import falcon
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from api.core import errors
from api.core.dispatch import ApiRequest
from api.core.transport import RECEIVED_AT, path_as_sent

MAX_PARAMS = 1000  # as many as an urlencoded body may carry (api.core.transport)
MAX_DEPTH = 12  # XML-RPC needs 8 (methodCall … member/value/string), SOAP 4
MAX_ELEMENTS = 4 * MAX_PARAMS + 16  # an XML-RPC member is 4 elements (member, name, value, type)
SOAP_ENVELOPES = ("http://www.w3.org/2003/05/soap-envelope",  # SOAP 1.2, as the docs show
                  "http://schemas.xmlsoap.org/soap/envelope/")  # 1.1: read alike
# Numbers, once stripped, are at most _MAX_NUMBER characters before any pattern sees them, and the
# patterns have no two quantifiers that could share a character: both are linear.
_MAX_NUMBER = 64
_INTEGER = re.compile(r"[-+]?[0-9]{1,20}")  # i8's range, in digits; int() checks no more
_DOUBLE = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")
_DECLARATION_BYTES = 1024  # an XML declaration (``<?xml … ?>``) longer than this is refused
_DECLARED_ENCODING = re.compile(rb"""\sencoding\s*=\s*["']([^"']*)["']""")
_EXPAT_ENCODINGS = frozenset({"utf-8", "utf-16", "utf-16-be", "utf-16-le", "ascii", "iso8859-1"})


class Refused(Exception):
    """The envelope cannot be read; the message (for logs only) says why."""


@dataclass(frozen=True)
class Envelope:
    """One XML transport: its default answer format, its malformed-envelope error, its reader."""

    format_name: str
    error: type[errors.ApiError]
    read_call: Callable[[Element], tuple[str, dict[str, str]]]


def read_envelope(req: falcon.Request, envelope: Envelope, fmt: str | None, *, max_bytes: int,
                  report_unexpected: Callable[[Exception], None], public_url: str = "",
                  skip: bool = False) -> ApiRequest:
    """The ApiRequest of an envelope POSTed to ``req``; a problem travels inside it, to be answered
    in ``fmt`` (default: the envelope's own). ``skip`` leaves the body unread (an address over its
    rate limit is answered 113 whatever it sent). Any other exception while reading is the
    envelope's error too, never a 500, and is handed to ``report_unexpected`` (to be logged)."""
    method = ""
    params: dict[str, str] = {}
    problem: errors.ApiError | None = None
    try:
        if not skip:
            method, params = envelope.read_call(parse(_read_body(req, max_bytes)))
    except errors.ApiError as error:
        problem = error
    except Refused as refused:
        problem = envelope.error(str(refused))
    except Exception as error:  # a last resort: what the parser did not expect is the envelope's
        report_unexpected(error)
        problem = envelope.error(type(error).__name__)
    received_at = req.env.get(RECEIVED_AT)
    return ApiRequest(http_method=req.method, method_name=method,
                      format_name=fmt or envelope.format_name, params=params,
                      client_addr=req.remote_addr or "",
                      base_url=public_url or f"{req.scheme}://{req.netloc}",
                      transport_error=problem, path=path_as_sent(req.env),
                      received_at=received_at if isinstance(received_at, float) else None)


def _read_body(req: falcon.Request, max_bytes: int) -> bytes:
    """At most ``max_bytes`` of a POST body (141 beyond); an envelope is never sent by GET."""
    if req.method != "POST":
        raise Refused("an envelope is POSTed")
    if req.content_length is not None and req.content_length > max_bytes:
        raise errors.RequestTooLarge()
    body = req.bounded_stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise errors.RequestTooLarge()
    return body


class _BoundedBuilder:
    """A TreeBuilder that refuses too deep or too many elements while the parser reads them."""

    def __init__(self) -> None:
        self.builder = TreeBuilder()
        self.depth = self.count = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        self.count += 1
        if self.depth > MAX_DEPTH:
            raise Refused(f"nested deeper than {MAX_DEPTH}")
        if self.count > MAX_ELEMENTS:
            raise Refused(f"more than {MAX_ELEMENTS} elements")
        return self.builder.start(tag, attrs)

    def end(self, tag: str) -> Element:
        self.depth -= 1
        return self.builder.end(tag)

    def data(self, text: str) -> None:
        self.builder.data(text)

    def close(self) -> Element:
        return self.builder.close()


def parse(body: bytes) -> Element:
    """The root of ``body``: well-formed UTF-8 (or declared) XML without a DTD, bounded."""
    _check_declared_encoding(body)
    parser = DefusedXMLParser(target=_BoundedBuilder(), forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    try:
        parser.feed(body)
        return parser.close()
    # LookupError: an unknown encoding=; ValueError (UnicodeError among them): pyexpat's own
    # refusal of a codec, should one pass the check above (a UTF-16 body's declaration).
    except (ParseError, DefusedXmlException, LookupError, ValueError) as error:
        raise Refused(f"{type(error).__name__}: {error}") from None


def _check_declared_encoding(body: bytes) -> None:
    """Refuse an encoding the XML declaration names unless expat reads it right: its own (UTF-8,
    UTF-16, ASCII, ISO-8859-1) or a single-byte charset, which pyexpat maps through Python's
    table. pyexpat refuses multi-byte codecs with ValueError and misreads stateful ones
    (ISO-2022-JP) and codecs that are no charset (unicode_escape) through the same table."""
    head = body.removeprefix(codecs.BOM_UTF8)
    if not (head.startswith(b"<?xml") and head[5:6].isspace()):
        return  # no declaration (a UTF-16 body's is UTF-16: expat reads it)
    end = head.find(b"?>", 0, _DECLARATION_BYTES)
    if end < 0:
        raise Refused(f"an XML declaration longer than {_DECLARATION_BYTES} bytes")
    declared = _DECLARED_ENCODING.search(head, 0, end)
    if declared is None:
        return
    name = declared.group(1).decode("ascii", "replace")
    try:
        codec = codecs.lookup(name)
    except LookupError:
        raise Refused(f"unknown encoding {name!r}") from None
    if codec.name not in _EXPAT_ENCODINGS and not _single_byte(codec):
        raise Refused(f"encoding {codec.name!r} is not read")


def _single_byte(codec: codecs.CodecInfo) -> bool:
    """Whether ``codec`` is one of Python's charmap charsets (cp1252, iso8859-15, koi8-r …): one
    byte, one character, from its module's ``decoding_table``."""
    module = sys.modules.get(getattr(codec.decode, "__module__", None) or "")
    return module is not None and hasattr(module, "decoding_table")


# -- XML-RPC (spec §2.6) ---------------------------------------------------------------------

def xmlrpc_call(root: Element) -> tuple[str, dict[str, str]]:
    """``<methodCall>``: the method name, and the members of its one struct parameter (none
    without parameters, as ``ServerProxy`` sends a call with no arguments)."""
    if root.tag != "methodCall":
        raise Refused("not a methodCall")
    if sorted(child.tag for child in _elements_only(root)) not in (["methodName"],
                                                                   ["methodName", "params"]):
        raise Refused("a methodCall is one methodName and at most one params")
    name = root.find("methodName")
    if name is None or len(name):
        raise Refused("no methodName")
    found = root.find("params")
    given = [] if found is None else list(_elements_only(found))
    if len(given) > 1 or any(param.tag != "param" for param in given):
        raise Refused("more than one param")
    params: dict[str, str] = {}
    if given:
        struct = _typed(_only(given[0], "value"))
        if struct is None or struct.tag != "struct":
            raise Refused("the param is no struct")
        if len(struct) > MAX_PARAMS:
            raise Refused(f"more than {MAX_PARAMS} members")
        for member in _elements_only(struct):
            key, value = _member(member)
            if key in params:
                raise Refused("a member named twice")
            params[key] = value
    return (name.text or "").strip(), params


def _member(member: Element) -> tuple[str, str]:
    """One ``<member>``: its name and its value as a string."""
    names = [child for child in _elements_only(member) if child.tag == "name"]
    values = [child for child in member if child.tag == "value"]
    if member.tag != "member" or len(names) != 1 or len(values) != 1 or len(member) != 2:
        raise Refused("a member is not one name and one value")
    if len(names[0]) or not names[0].text:
        raise Refused("a member's name is empty")
    return names[0].text, _scalar(values[0])


def _only(parent: Element, tag: str) -> Element:
    """The single child ``tag`` of ``parent``."""
    if len(_elements_only(parent)) != 1 or parent[0].tag != tag:
        raise Refused(f"{parent.tag} does not hold one {tag}")
    return parent[0]


def _elements_only(parent: Element) -> Element:
    """``parent``, an element that holds elements, refused if it holds text other than
    whitespace (``<value><string>a</string>EXTRA</value>``)."""
    if (parent.text or "").strip() or any((child.tail or "").strip() for child in parent):
        raise Refused(f"text among the children of {parent.tag}")
    return parent


def _typed(value: Element) -> Element | None:
    """A ``<value>``'s type element, None for an untyped value (a string, XML-RPC says)."""
    if not len(value):
        return None
    if len(_elements_only(value)) > 1:
        raise Refused("a value holds more than one type")
    return value[0]


def _number(text: str, pattern: re.Pattern[str], kind: str) -> str:
    """``text`` stripped, if it is at most _MAX_NUMBER characters that ``pattern`` matches."""
    number = text.strip()
    if len(number) > _MAX_NUMBER or not pattern.fullmatch(number):
        raise Refused(f"{kind} that is not one")
    return number


def _integer(text: str) -> str:
    return str(int(_number(text, _INTEGER, "an int")))


def _boolean(text: str) -> str:
    if text.strip() not in ("0", "1"):
        raise Refused("a boolean that is not 0 or 1")
    return text.strip()


def _double(text: str) -> str:
    """As sent (``48.85``, ``1e-05``, as ``xmlrpc.client`` writes a float): handlers parse it."""
    number = _number(text, _DOUBLE, "a double")
    if not math.isfinite(float(number)):
        raise Refused("a double that is not finite")
    return number


_SCALARS: dict[str, Callable[[str], str]] = {
    "string": str, "int": _integer, "i4": _integer, "i8": _integer, "boolean": _boolean,
    "double": _double}


def _scalar(value: Element) -> str:
    """A member's ``<value>`` as the string a REST client would send for it."""
    typed = _typed(value)
    if typed is None:
        return value.text or ""
    convert = _SCALARS.get(typed.tag)
    if convert is None or len(typed):
        raise Refused(f"a {typed.tag} value")  # array, struct, base64, dateTime, nil …
    return convert(typed.text or "")


# -- SOAP (spec §2.5) ------------------------------------------------------------------------

def soap_call(root: Element) -> tuple[str, dict[str, str]]:
    """``<s:Envelope><s:Body><x:ipernityRequest>``: its ``method`` child names the method, every
    other child (by local name, namespaced or not) is a parameter holding text only. The first
    ``method`` names the method; a second one is a parameter (``api.methods.get`` takes one)."""
    namespace, local = _split(root.tag)
    if local != "Envelope" or namespace not in SOAP_ENVELOPES:
        raise Refused("not a SOAP envelope")
    header_tag, body_tag = f"{{{namespace}}}Header", f"{{{namespace}}}Body"
    if [child.tag for child in _elements_only(root)] not in ([body_tag], [header_tag, body_tag]):
        raise Refused("an envelope is an optional Header, then one Body")
    if len(root) == 2:
        _check_understood(root[0], namespace)
    body = _elements_only(root[-1])
    if len(body) != 1 or _split(body[0].tag)[1] != "ipernityRequest":
        raise Refused("the body holds no single ipernityRequest")
    request = body[0]
    if len(_elements_only(request)) > MAX_PARAMS + 1:
        raise Refused(f"more than {MAX_PARAMS} parameters")
    method: str | None = None
    values: dict[str, str] = {}
    for child in request:
        name = _split(child.tag)[1]
        if len(child):
            raise Refused(f"{name} holds elements")
        if name == "method" and method is None:
            method = (child.text or "").strip()
        elif name in values:
            raise Refused(f"{name} sent twice")
        else:
            values[name] = child.text or ""
    return method or "", values


def _check_understood(header: Element, namespace: str) -> None:
    """Refuse a header block marked ``mustUnderstand`` (``true``/``1``), whatever its role: this
    server understands none (SOAP 1.2 part 1 §5.2.3), and answers 121 rather than its
    MustUnderstand fault."""
    for block in header:
        if block.get(f"{{{namespace}}}mustUnderstand", "").strip() in ("1", "true"):
            raise Refused(f"a header block to understand: {block.tag}")


def _split(tag: Any) -> tuple[str, str]:
    """``{namespace}local`` as (namespace, local); a comment's tag is no string."""
    if not isinstance(tag, str):
        raise Refused("not an element")
    namespace, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, local


XMLRPC = Envelope("xmlrpc", errors.InvalidXmlRpcEnvelope, xmlrpc_call)
SOAP = Envelope("soap", errors.InvalidSoapEnvelope, soap_call)

__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "MAX_PARAMS", "SOAP", "XMLRPC", "Envelope", "Refused",
           "parse", "read_envelope"]
