"""PHP ``serialize()`` rendering of the same structure as the JSON (spec §2.4, inferred there)."""

from __future__ import annotations

from typing import Any

from api.formats.json import error_document, ok_document


def serialize(value: Any) -> str:
    """PHP's serialize() for str, bool, int, float, None, list and dict; lengths in UTF-8 bytes."""
    if isinstance(value, str):
        return f's:{len(value.encode("utf-8"))}:"{value}";'
    if isinstance(value, bool):  # before int: bool is an int subclass
        return f"b:{int(value)};"
    if isinstance(value, int):
        return f"i:{value};"
    if isinstance(value, float):
        return f"d:{value!r};"
    if value is None:
        return "N;"
    if isinstance(value, list):
        return _array(enumerate(value), len(value))
    if isinstance(value, dict):
        return _array(value.items(), len(value))
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _array(items: Any, count: int) -> str:
    return f"a:{count}:{{" + "".join(serialize(k) + serialize(v) for k, v in items) + "}"


class Php:
    """The php format."""

    name = "php"
    content_type = "text/plain; charset=utf-8"

    def render(self, tree: dict[str, Any]) -> bytes:
        return serialize(ok_document(tree)).encode("utf-8")

    def render_error(self, code: int, message: str) -> bytes:
        return serialize(error_document(code, message)).encode("utf-8")
