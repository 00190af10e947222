"""Output formats: one result tree, several renderings, kept in one table keyed by the format name.

A format has a ``content_type``, ``render(tree)`` for success and ``render_error(code, message)``
for the error envelope. JSONP is json with a callback wrapper (``Jsonp``), chosen per request.
``xmlrpc`` and ``soap`` are the default answers of the XML-RPC and SOAP transports (spec §2.5-2.6),
registered like the others, so a REST call may ask for them too (``/api/test.echo/soap``).

May import ``api.config`` and ``keys``; nothing above.
"""

from __future__ import annotations

from typing import Any, Protocol

from api.formats.json import Json, Jsonp
from api.formats.php import Php
from api.formats.soap import Soap
from api.formats.xml import Xml
from api.formats.xmlrpc import XmlRpc


class Format(Protocol):
    """What the dispatcher needs from an output format."""

    name: str
    content_type: str

    def render(self, tree: dict[str, Any]) -> bytes: ...

    def render_error(self, code: int, message: str) -> bytes: ...


FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (Json(), Xml(), Php(), XmlRpc(), Soap())}
DEFAULT_FORMAT = "json"

__all__ = ["DEFAULT_FORMAT", "FORMATS", "Format", "Jsonp"]
