"""XML (spec §2.2): a prolog, ``<api status="ok">`` around the payload, errors as attributes."""

from __future__ import annotations

from typing import Any

from lxml import etree

from api.formats.tree import build_xml, clean_text


class Xml:
    """The XML format, built with lxml (never by string concatenation)."""

    name = "xml"
    content_type = "text/xml; charset=utf-8"

    def render(self, tree: dict[str, Any]) -> bytes:
        return _serialize(ok_element(tree))

    def render_error(self, code: int, message: str) -> bytes:
        root = etree.Element("api", status="error", code=str(code), message=clean_text(message))
        return _serialize(root)


def ok_element(tree: dict[str, Any]) -> Any:
    """``<api status="ok">`` around the payload; XML-RPC and SOAP carry it escaped in a string."""
    root = etree.Element("api", status="ok")
    for name, node in tree.items():
        build_xml(root, name, node)
    return root


_PROLOG = b'<?xml version="1.0" encoding="utf-8"?>\n'


def _serialize(root: Any) -> bytes:
    return _PROLOG + etree.tostring(root, encoding="utf-8")
