"""``/help/api`` and ``/help/api/method/<name>``: the method documentation, generated from the
registry (issue 9 item 5); ``api.methods.getList``/``get`` link each method's page as ``about``.

The example answer: a method registers ``response`` as a sketch of its XML from the spec's shapes
(``<doc doc_id media …/>``: attribute names without values, ``…`` for more, ``[a b]`` for optional
ones), which is not always well-formed. ``example_tree`` turns the sketch into a result tree (a bare
attribute gets the value ``…``; ``…`` and brackets are dropped; a child named as its parent's
singular, or repeated, is a list) and the page shows that one tree rendered by the real formatters
in each format (``api/formats``), so the three always agree and show the real envelope.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import groupby
from typing import Any

import falcon
from lxml import etree

from api.core.errors import COMMON_ERRORS
from api.core.permissions import described
from api.core.registry import METHOD_HELP_PATH, MethodSpec
from api.formats import FORMATS
from api.formats.json import Json
from api.formats.php import Php
from api.formats.tree import Text
from api.formats.xml import Xml
from api.web.home import base_url
from api.web.pages import SESSION_COOKIE, Page, Pages
from keys import store

PLACEHOLDER = "…"
_TAG = re.compile(r"<([^!?/>][^>]*?)(/?)>")
_ATTRIBUTE = re.compile(r"""([A-Za-z_][\w.:-]*)(?:\s*=\s*("[^"]*"|'[^']*'))?""")
_FLAGS = (("token", "an auth_token is required"), ("sign", "the call must be signed (api_sig)"),
          ("post", "the call must be an HTTP POST"),
          ("safety", "the answer honours the safety (safesurf) filter"))


def well_formed(sketch: str) -> str:
    """The registered sketch as well-formed XML: values for bare attributes, no ``…`` or ``[]``."""

    def tag(found: re.Match[str]) -> str:
        inside = found.group(1).replace(PLACEHOLDER, " ").replace("[", " ").replace("]", " ")
        name, _, rest = inside.strip().partition(" ")
        attributes = [f'{m.group(1)}={m.group(2) or chr(34) + PLACEHOLDER + chr(34)}'
                      for m in _ATTRIBUTE.finditer(rest)]
        return "<" + " ".join([name, *attributes]) + found.group(2) + ">"

    return _TAG.sub(tag, sketch)


def example_tree(sketch: str) -> dict[str, Any]:
    """The result tree of a method's registered example (``{}`` when it has none)."""
    if not sketch.strip():
        return {}
    root = etree.fromstring(f"<example>{well_formed(sketch)}</example>")
    return _children(root)


def _children(element: Any) -> dict[str, Any]:
    kids = [child for child in element if isinstance(child.tag, str)]
    counts = Counter(child.tag for child in kids)
    out: dict[str, Any] = {}
    for child in kids:
        node = _node(child)
        if counts[child.tag] > 1 or element.tag == child.tag + "s":
            out.setdefault(child.tag, []).append(node)
        else:
            out[child.tag] = node
    return out


def _node(element: Any) -> Any:
    text = (element.text or "").strip()
    node: dict[str, Any] = dict(element.attrib)
    children = _children(element)
    if not node and not children:
        return Text(text) if text and text != PLACEHOLDER else {}
    if text and text != PLACEHOLDER and not children:
        node["_value"] = text
    node.update(children)
    return node


def examples(spec: MethodSpec) -> list[tuple[str, str]]:
    """(format, body) for json, xml and php: the example tree through the real formatters."""
    tree = example_tree(spec.response)
    as_json = json.dumps(json.loads(Json().render(tree)), indent=2, ensure_ascii=False)
    as_xml = etree.tostring(etree.fromstring(Xml().render(tree)), pretty_print=True,
                            encoding="unicode", xml_declaration=False)
    prolog = '<?xml version="1.0" encoding="utf-8"?>\n'
    return [("json", as_json), ("xml", prolog + as_xml.rstrip()),
            ("php", Php().render(tree).decode("utf-8"))]


def parameters(spec: MethodSpec) -> list[tuple[str, bool, str]]:
    """(name, required, help) for every parameter, the protocol's own first."""
    rows = [] if spec.keyless else [("api_key", True, "Your application's API key.")]
    if spec.keyless:
        rows.append(("api_key", False, "Your application's API key (checked when sent)."))
    if spec.token:
        rows.append(("auth_token", True, "The member's authentication token (auth.getToken)."))
    if spec.sign or spec.token:
        rows.append(("api_sig", True, "The request's MD5 signature."))
    return rows + [(p.name, p.required, p.help) for p in spec.params]


def _paragraphs(notes: str) -> list[str]:
    return [" ".join(block.split()) for block in re.split(r"\n\s*\n", notes) if block.strip()]


_UNSHOWABLE = re.compile(r"[^A-Za-z0-9_.]")  # an unknown name is shown in these characters only
_SHOWN_NAME = 64


class HelpIndex(Page):
    """``/help/api``: every method by family (the first part of its name)."""

    def get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self.show(req, resp)

    def show(self, req: falcon.Request, resp: falcon.Response, missing: str = "") -> None:
        """The index; with ``missing``, the 404 page of an unknown method name."""
        specs = sorted(self.pages.ctx.registry, key=lambda spec: spec.name)
        families = [(family, list(group))
                    for family, group in groupby(specs, key=lambda spec: spec.name.split(".")[0])]
        self.pages.render(resp, "help_index.html",
                          status=falcon.HTTP_404 if missing else falcon.HTTP_200,
                          user=self.pages.user(req), families=families, count=len(specs),
                          missing=missing, base_url=base_url(self.pages, req),
                          list_url=METHOD_HELP_PATH + "api.methods.getList")


class HelpMethod(HelpIndex):
    """``/help/api/method/<name>``: one method's page; an unknown name is a 404."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "") -> None:
        self._guard(lambda req, resp: self.method(req, resp, name), req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response, name: str = "") -> None:
        self._guard(self.post, req, resp)  # the 405 page: without this, falcon's JSON 500

    def method(self, req: falcon.Request, resp: falcon.Response, name: str, *,
               explored: dict[str, Any] | None = None,
               form: dict[str, str] | None = None) -> None:
        """Render ``name``'s page; ``explored`` is an explorer call's result (api/web/explorer.py),
        ``form`` what its form held."""
        spec = self.pages.ctx.registry.get(name)
        if spec is None:  # echoed back only as a method name could be written, and short
            return self.show(req, resp, missing=_UNSHOWABLE.sub("?", name[:_SHOWN_NAME]))
        permission = ", ".join(f"{area}:{level}" for area, level in (spec.perms or {}).items())
        user = self.pages.user(req)
        explorer = None if user is None else {  # the explorer's form: the member's keys
            "apps": store.list_keys(user), "formats": list(FORMATS), "form": form or {},
            "csrf_token": self.pages.accounts.csrf_token(req.cookies[SESSION_COOKIE]),
            "params": list(spec.params), "result": explored}
        self.pages.render(
            resp, "help_method.html", user=user, spec=spec, explorer=explorer,
            family=spec.name.split(".")[0], notes=_paragraphs(spec.notes),
            flags=[(flag, getattr(spec, flag), meaning) for flag, meaning in _FLAGS],
            permission=permission, permission_words="; ".join(described(dict(spec.perms or {}))),
            params=parameters(spec), examples=examples(spec),
            example_empty=not spec.response.strip(), base_url=base_url(self.pages, req),
            own_errors=spec.errors, global_errors=COMMON_ERRORS)


def add_routes(app: falcon.App, pages: Pages) -> None:
    """Mount the documentation pages."""
    app.add_route("/help/api", HelpIndex(pages))
    app.add_route(METHOD_HELP_PATH.rstrip("/") + "/{name}", HelpMethod(pages))
