"""The result tree and the XML→JSON mapping rules of spec §2.3, in one place.

A handler returns a dict of top-level elements. Inside an element (a dict):

* a scalar (str, int, float, bool) is an attribute; ``None`` leaves it out;
* a ``dict`` is a child element; a ``list`` is a repeated child element (``[]`` means no children);
* a ``Text`` is a child element holding only text; the key ``_value`` is the element's own text;
* a ``ListOf`` is a container whose JSON form is the bare array (``api.methods.get``, §7.2).

``to_plain`` gives the structure JSON and PHP serialise: attribute values become strings (rule 1),
text-only elements plain strings (rule 2), ``_value`` beside attributes (rule 3), lists stay lists
even with one item (rule 4), and empty elements ``[]`` (rule 5). An empty repeated child keeps its
key as ``[]`` (``{"albums": {"total": "0", "album": []}}``): live clients index
``rsp["albums"]["album"]`` without checking, so the item name is declared where the result is built
by always writing the list, even when it is empty. XML has nothing to write for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Characters XML 1.0 cannot carry (spec §2; issue 2 item 5): dropped on output, never sent.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class Text(str):
    """A child element that holds only text, e.g. ``<description>…</description>``."""

    __slots__ = ()


@dataclass(frozen=True)
class ListOf:
    """A container element of repeated ``tag`` children that JSON renders as a bare array.

    ``text_key`` names the JSON property that carries each item's ``_value`` text.
    """

    tag: str
    items: list[dict[str, Any]] = field(default_factory=list)
    text_key: str = "_value"


def clean_text(value: str) -> str:
    """Drop the characters XML cannot represent (done for every format, so they all agree)."""
    return _XML_ILLEGAL.sub("", value)


def scalar(value: Any) -> str:
    """An attribute value as the wire string: bools as 1/0, numbers in decimal (rule 1)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return format(value, ".15g")
    return str(value)


def to_plain(tree: dict[str, Any]) -> dict[str, Any]:
    """The JSON/PHP structure for a result tree's top-level elements."""
    return {name: _plain_node(node) for name, node in tree.items() if node is not None}


def _plain_node(node: Any) -> Any:
    if isinstance(node, dict):
        return _plain_element(node)
    if isinstance(node, list):
        return [_plain_node(item) for item in node]
    if isinstance(node, ListOf):
        return [_plain_listed(item, node.text_key) for item in node.items]
    return scalar(node)


def _plain_element(element: dict[str, Any]) -> Any:
    out: dict[str, Any] = {}
    for key, value in element.items():
        if value is not None:
            out[key] = _plain_node(value)
    if not out:
        return []
    if len(out) == 1 and "_value" in out:
        return out["_value"]
    return out


def _plain_listed(item: dict[str, Any], text_key: str) -> Any:
    plain = _plain_element(item)
    if isinstance(plain, dict) and "_value" in plain and text_key != "_value":
        plain[text_key] = plain.pop("_value")
    elif isinstance(plain, str):
        plain = {text_key: plain}
    return plain


def build_xml(parent: Any, name: str, node: Any) -> None:
    """Append ``node`` to the lxml element ``parent`` as element(s) called ``name``."""
    from lxml import etree

    if node is None:
        return
    if isinstance(node, list):
        for item in node:
            build_xml(parent, name, item)
        return
    child = etree.SubElement(parent, name)
    if isinstance(node, ListOf):
        for item in node.items:
            build_xml(child, node.tag, item)
        return
    if not isinstance(node, dict):
        child.text = scalar(node)
        return
    for key, value in node.items():
        if value is None or isinstance(value, (dict, list, ListOf, Text)):
            continue
        if key == "_value":
            child.text = scalar(value)
        else:
            child.set(key, scalar(value))
    for key, value in node.items():
        if isinstance(value, (dict, list, ListOf, Text)):
            build_xml(child, key, value)
