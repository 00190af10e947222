"""Element and attribute names of the spec's response examples (method-shapes.md) and of ours."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from lxml import etree

SHAPES = Path(__file__).resolve().parents[1] / "golden" / "method-shapes.md"  # copy of the spec
_SECTION = re.compile(r"^## (\S+)\n\n```xml\n(.*?)```", re.M | re.S)


@cache
def _examples() -> dict[str, str]:
    return {name: body for name, body in _SECTION.findall(SHAPES.read_text(encoding="utf-8"))}


def _names(root: etree._Element) -> set[str]:
    out: set[str] = set()

    def walk(element: etree._Element, path: str) -> None:
        for child in element:
            if not isinstance(child.tag, str):
                continue
            here = f"{path}/{child.tag}" if path else child.tag
            out.add(here)
            out.update(f"{here}@{name}" for name in child.attrib)
            walk(child, here)

    walk(root, "")
    return out


def spec_names(method: str) -> set[str]:
    """Paths (``doc/owner@user_id``) named by the spec's example; ``(...)`` lines are dropped."""
    body = "\n".join(line for line in _examples()[method].splitlines() if "(...)" not in line)
    body = re.sub(r"<(\w+) \.\.\.[^>]*/>", r"<\1/>", body)  # "<dates ... if option/>"
    body = re.sub(r"\.\.\.[^>/]*/>", "/>", body)  # "<original ... if option and available/>"
    parser = etree.XMLParser(recover=True)
    return _names(etree.fromstring(f"<api>{body}</api>".encode(), parser))


def our_names(xml: bytes) -> set[str]:
    """Paths named by one of our XML replies (inside the ``<api>`` envelope)."""
    return _names(etree.fromstring(xml))


def compare(method: str, xml: bytes, *, added: set[str] = frozenset(),
            absent: set[str] = frozenset()) -> None:
    """Our names must be the spec's, except the ``added`` and ``absent`` we document."""
    ours, spec = our_names(xml), spec_names(method)
    assert ours - spec == set(added), f"names the spec does not have: {sorted(ours - spec)}"
    assert spec - ours == set(absent), f"spec names we lack: {sorted(spec - ours)}"
