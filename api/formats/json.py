"""JSON (spec §2.3) and JSONP renderings of the result tree."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, ClassVar

from api.formats.tree import to_plain

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# JSONEncoder.encode builds a C encoder for every document; this one is built once (the C
# module's, when CPython has it: no cycle check, which plain result trees never need).
_C_ENCODE = None if c_make_encoder is None else c_make_encoder(
    None, _ENCODER.default, encode_basestring, None, ":", ",", False, False, True)


def _dumps(document: dict[str, Any]) -> str:
    """``document`` as compact JSON, non-ASCII kept (the same text as ``_ENCODER.encode``)."""
    if _C_ENCODE is None:
        return _ENCODER.encode(document)
    return "".join(_C_ENCODE(document, 0))
CALLBACK_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$.]{0,99}$")


def ok_document(tree: dict[str, Any]) -> dict[str, Any]:
    """The whole success document: the payload's top-level elements first, the ``api`` status last.

    Parsers do not care; a shell uploader written against the live service cuts values out of the
    body by position and reads the first quoted value as its frob or ticket.
    """
    return {**to_plain(tree), "api": {"status": "ok"}}


def error_document(code: int, message: str) -> dict[str, Any]:
    """The error document; ``code`` is a string like every attribute (spec §2.3 rule 1: a Go
    client decodes it into a string field, Python clients ``int()`` it)."""
    return {"api": {"status": "error", "code": str(code), "message": message}}


class Json:
    """The default format."""

    name = "json"
    content_type = "application/json; charset=utf-8"

    def render(self, tree: dict[str, Any]) -> bytes:
        return _dumps(ok_document(tree)).encode("utf-8")

    def render_error(self, code: int, message: str) -> bytes:
        return _dumps(error_document(code, message)).encode("utf-8")


class Jsonp(Json):
    """JSON wrapped in a call to a checked callback; ``/**/`` defeats content-sniffing tricks."""

    content_type = "text/javascript; charset=utf-8"
    headers: ClassVar[Mapping[str, str]] = {"X-Content-Type-Options": "nosniff"}

    def __init__(self, callback: str) -> None:
        self.callback = callback

    def render(self, tree: dict[str, Any]) -> bytes:
        return self._wrap(super().render(tree))

    def render_error(self, code: int, message: str) -> bytes:
        return self._wrap(super().render_error(code, message))

    def _wrap(self, body: bytes) -> bytes:
        return b"/**/" + self.callback.encode("ascii") + b"(" + body + b");"
