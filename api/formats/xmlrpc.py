"""XML-RPC (spec §2.6): the XML format's document as one string, errors as faults.

Success is ``<methodResponse><params><param><value><string>`` holding ``<api status="ok">…</api>``
escaped (the whole element, not only the payload: a result of two top-level elements, as
doc.getContainers gives, stays one well-formed document, and an empty result is not an empty
string). An error is a fault whose ``faultCode`` is the API code (an int) and ``faultString``
the message, which ``xmlrpc.client`` raises as ``Fault``.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from api.formats.tree import clean_text
from api.formats.xml import ok_element


class XmlRpc:
    """The XML-RPC envelope: the default answer of ``/api/xmlrpc``."""

    name = "xmlrpc"
    content_type = "text/xml; charset=utf-8"

    def render(self, tree: dict[str, Any]) -> bytes:
        response = etree.Element("methodResponse")
        param = etree.SubElement(etree.SubElement(response, "params"), "param")
        _value(param, "string", etree.tostring(ok_element(tree), encoding="unicode"))
        return _serialize(response)

    def render_error(self, code: int, message: str) -> bytes:
        response = etree.Element("methodResponse")
        struct = etree.SubElement(_value(etree.SubElement(response, "fault")), "struct")
        for name, kind, text in (("faultCode", "int", str(code)),
                                 ("faultString", "string", clean_text(message))):
            member = etree.SubElement(struct, "member")
            etree.SubElement(member, "name").text = name
            _value(member, kind, text)
        return _serialize(response)


def _value(parent: Any, kind: str = "", text: str = "") -> Any:
    """A ``<value>`` under ``parent``; with ``kind``, holding ``<kind>text</kind>``."""
    value = etree.SubElement(parent, "value")
    if kind:
        etree.SubElement(value, kind).text = text
    return value


def _serialize(root: Any) -> bytes:
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)
