"""SOAP (spec §2.5): the XML format's document escaped inside ``ipernityResponse``; faults with
``faultcode`` ``ipernity.error.<code>``; and the WSDL that lets SOAP toolkits call ``/api/soap``.

The envelope is SOAP 1.2's, as the original's docs show. A fault carries the documented
``faultcode``, ``faultstring``, ``faultactor`` and ``details`` and, before them, SOAP 1.2's own
``Code`` (Sender, or Receiver for our failures, with the subcode ``x:ipernity.error.<code>``) and
``Reason``, so that a SOAP 1.2 toolkit (zeep) reads the code and message too.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

from api.formats.tree import clean_text
from api.formats.xml import ok_element

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
IPERNITY = "urn:ipernity"
FAULT_PREFIX = "ipernity.error."
ENDPOINT = "/api/soap"
_NSMAP = {"s": SOAP12}


class Soap:
    """The SOAP envelope: the default answer of ``/api/soap``."""

    name = "soap"
    content_type = "application/soap+xml; charset=utf-8"

    def render(self, tree: dict[str, Any]) -> bytes:
        body = _envelope()
        response = etree.SubElement(body, f"{{{IPERNITY}}}ipernityResponse", nsmap={"x": IPERNITY})
        response.text = etree.tostring(ok_element(tree), encoding="unicode")
        return _serialize(body)

    def render_error(self, code: int, message: str) -> bytes:
        fault = etree.SubElement(_envelope(), f"{{{SOAP12}}}Fault", nsmap={"x": IPERNITY})
        message = clean_text(message)
        fault_code = etree.SubElement(fault, f"{{{SOAP12}}}Code")
        # The spec's 5xx are ours; every other code is the caller's (SOAP 1.2 §5.4.6).
        etree.SubElement(fault_code, f"{{{SOAP12}}}Value").text = (
            "s:Receiver" if code >= 500 else "s:Sender")
        subcode = etree.SubElement(fault_code, f"{{{SOAP12}}}Subcode")
        etree.SubElement(subcode, f"{{{SOAP12}}}Value").text = f"x:{FAULT_PREFIX}{code}"
        reason = etree.SubElement(etree.SubElement(fault, f"{{{SOAP12}}}Reason"),
                                  f"{{{SOAP12}}}Text")
        reason.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        reason.text = message
        # The documented children; the original's URLs named its own host, ours are relative.
        for name, text in (("faultcode", f"{FAULT_PREFIX}{code}"), ("faultstring", message),
                           ("faultactor", f"{ENDPOINT}/"),
                           ("details", "See /help/api for more details")):
            etree.SubElement(fault, name).text = text
        return _serialize(fault.getparent())


def _envelope() -> Any:
    """An empty ``s:Envelope``; its ``s:Body`` is returned."""
    envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap=_NSMAP)
    return etree.SubElement(envelope, f"{{{SOAP12}}}Body")


def _serialize(body: Any) -> bytes:
    return etree.tostring(body.getroottree(), encoding="utf-8", xml_declaration=True)


# One operation, document/literal over SOAP 1.2: ``ipernityRequest`` holds ``method`` and any
# parameters as unqualified children (spec §2.5); ``ipernityResponse`` is a string (the escaped
# XML). Trusted text, parsed once; only the endpoint's address is filled in per request.
_WSDL = b"""<?xml version="1.0" encoding="utf-8"?>
<definitions name="ipernity" targetNamespace="urn:ipernity" xmlns="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:tns="urn:ipernity"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema">
 <types>
  <xsd:schema targetNamespace="urn:ipernity" elementFormDefault="unqualified">
   <xsd:element name="ipernityRequest">
    <xsd:complexType>
     <xsd:sequence>
      <xsd:element name="method" type="xsd:string"/>
      <xsd:any minOccurs="0" maxOccurs="unbounded" processContents="skip"/>
     </xsd:sequence>
    </xsd:complexType>
   </xsd:element>
   <xsd:element name="ipernityResponse" type="xsd:string"/>
  </xsd:schema>
 </types>
 <message name="ipernityRequest"><part name="parameters" element="tns:ipernityRequest"/></message>
 <message name="ipernityResponse"><part name="parameters" element="tns:ipernityResponse"/></message>
 <portType name="ipernityPortType">
  <operation name="ipernityRequest">
   <input message="tns:ipernityRequest"/>
   <output message="tns:ipernityResponse"/>
  </operation>
 </portType>
 <binding name="ipernityBinding" type="tns:ipernityPortType">
  <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
  <operation name="ipernityRequest">
   <soap12:operation soapAction="urn:ipernity#ipernityRequest"/>
   <input><soap12:body use="literal"/></input>
   <output><soap12:body use="literal"/></output>
  </operation>
 </binding>
 <service name="ipernityService">
  <port name="ipernityPort" binding="tns:ipernityBinding">
   <soap12:address location=""/>
  </port>
 </service>
</definitions>
"""
WSDL_CONTENT_TYPE = "text/xml; charset=utf-8"


def wsdl(base_url: str) -> bytes:
    """The WSDL of ``/api/soap`` on the server at ``base_url`` (scheme and host)."""
    document = etree.fromstring(_WSDL)
    address = document.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address")
    address.set("location", base_url + ENDPOINT)
    return etree.tostring(document, encoding="utf-8", xml_declaration=True)
