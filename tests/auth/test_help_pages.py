"""The front door (/), the shared layout and stylesheet, and the method documentation
(/help/api, /help/api/method/<name>) through falcon's TestClient (issue 9 items 1 and 5)."""

from __future__ import annotations

import html
import json
import re

import pytest
from lxml import etree
from markupsafe import escape

from api.core.errors import COMMON_ERRORS
from api.methods import build_registry
from api.web.help import example_tree, examples
from tests.auth.conftest import Browser

REGISTRY = build_registry()
LINK = re.compile(r'<(?:a|link)\b[^>]*\bhref="([^"]+)"')


def esc(text: str) -> str:
    """``text`` as the templates escape it."""
    return str(escape(text))


def links(page: str) -> set[str]:
    """Every href of a page (links and stylesheets), unescaped."""
    return {html.unescape(href) for href in LINK.findall(page)}


def test_home_page_says_what_this_is_and_links_everything(client):
    page = client.simulate_get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "ipernity API" in page.text and "http://falconframework.org/api/" in page.text
    assert {"/help/api", "/signup", "/login"} <= links(page.text)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page.text
    assert "Logged in as" not in page.text


def test_home_page_of_a_member_links_the_console(browser: Browser, member):
    browser.login("member", "member-password")
    page = browser.get("/")
    assert {"/apps/keys", "/apps/authorized", "/logout", "/help/api"} <= links(page.text)
    assert '<strong id="who">member</strong>' in page.text
    assert "/signup" not in links(page.text)


def test_public_url_is_the_base_shown(settings, ctx, clock):
    import dataclasses

    import falcon.testing

    from api.app import create_app

    public = dataclasses.replace(settings, public_url="https://api.example.org/")
    ctx.settings = public
    page = falcon.testing.TestClient(create_app(public, ctx=ctx)).simulate_get("/")
    assert "https://api.example.org/api/" in page.text


@pytest.mark.parametrize("url", ["/", "/login", "/signup", "/help/api",
                                 "/help/api/method/doc.get", "/help/api/method/nope"])
def test_every_page_uses_the_layout_and_stylesheet(client, url):
    page = client.simulate_get(url)
    css = [href for href in links(page.text) if href.startswith("/static/site.css?v=")]
    assert css, "the layout links the stylesheet"
    assert 'href="/help/api"' in page.text and 'class="site"' in page.text
    assert "style-src 'self'" in page.headers["content-security-policy"]
    assert "<style" not in page.text and " style=" not in page.text  # the CSP allows no inline CSS


def test_message_and_authorized_pages_use_the_layout(browser: Browser, member):
    error = browser.get("/apps/authorize?api_key=nope")
    assert error.status_code == 400 and 'class="site"' in error.text
    browser.login("member", "member-password")
    page = browser.get("/apps/authorized")
    assert 'class="site"' in page.text and 'class="empty"' in page.text


def test_every_form_field_has_a_label(client):
    field = re.compile(r"<(input|select|textarea)\b([^>]*)>")
    for url in ("/login", "/signup"):
        text = client.simulate_get(url).text
        for form_field in field.finditer(text):
            if 'type="hidden"' in form_field.group(2):
                continue
            before = text[:form_field.start()]
            assert before.rfind("<label") > before.rfind("</label>"), (url, form_field.group(0))


def test_stylesheet_is_served_with_caching_headers(client):
    href = next(h for h in links(client.simulate_get("/").text) if h.startswith("/static/"))
    path, _, query = href.partition("?")
    sheet = client.simulate_get(path, query_string=query)
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "text/css; charset=utf-8"
    assert "max-age=31536000" in sheet.headers["cache-control"]
    assert ":focus-visible" in sheet.text
    unversioned = client.simulate_get(path)
    assert unversioned.headers["cache-control"] == "public, max-age=3600"
    again = client.simulate_get(path, headers={"If-None-Match": sheet.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert client.simulate_get("/static/../pages.py").status_code == 404
    assert client.simulate_get("/static/nope.css").status_code == 404


def test_stylesheet_is_package_data():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"static/*.css"' in text


def test_index_lists_every_method_by_family(client):
    page = client.simulate_get("/help/api")
    assert page.status_code == 200
    for spec in REGISTRY:
        assert f'href="/help/api/method/{spec.name}"' in page.text
        assert esc(spec.title) in page.text
    families = re.findall(r'<h2 id="h-([a-z]+)">', page.text)
    assert families == sorted({spec.name.split(".")[0] for spec in REGISTRY})


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda spec: spec.name)
def test_every_method_has_its_page(client, spec):
    """Fails when a registered method lacks its docs: title, notes, every parameter, examples."""
    page = client.simulate_get(f"/help/api/method/{spec.name}")
    assert page.status_code == 200
    text = page.text
    assert f"<h1>{spec.name}</h1>" in text
    assert f'<p class="lead" id="method-title">{esc(spec.title)}</p>' in text
    assert spec.notes.split()[0] in text
    params = text.split('<table id="params">')[1].split("</table>")[0]
    for param in spec.params:
        assert f"<code>{param.name}</code>" in params, param.name
        assert esc(param.help) in params, param.name
    for fmt in ("json", "xml", "php"):
        assert f'<h3 id="example-{fmt}">' in text
    for error in (*spec.errors, *COMMON_ERRORS):
        assert f"<td>{error.code}</td><td>{esc(error.message)}</td>" in text


def test_method_page_details(client):
    text = client.simulate_get("/help/api/method/doc.delete").text
    assert "token: <strong>yes</strong>" in text and "post: <strong>yes</strong>" in text
    assert "<code>doc:delete</code>" in text
    params = text.split('<table id="params">')[1].split("</table>")[0]
    assert re.search(r"<code>doc_id</code></td><td><span class=\"req\"", params)
    assert re.search(r"<code>auth_token</code></td><td><span class=\"req\"", params)
    upload = client.simulate_get("/help/api/method/test.hello").text
    assert "permission: none" in upload.lower()


def test_examples_are_the_formatters_output(client):
    spec = REGISTRY.get("doc.getPerms")
    assert spec is not None
    rendered = dict(examples(spec))
    assert json.loads(rendered["json"])["visibility"]["ispublic"] == "1"
    assert json.loads(rendered["json"])["api"] == {"status": "ok"}
    assert etree.fromstring(rendered["xml"].encode()).get("status") == "ok"
    assert rendered["php"].startswith("a:5:{s:10:\"visibility\"")
    text = client.simulate_get("/help/api/method/doc.getPerms").text
    assert esc(rendered["php"]) in text


def test_example_sketches_parse():
    """A bare attribute gets a placeholder, a plural's children are a list, ``…`` is dropped."""
    tree = example_tree('<docs count="50"><doc doc_id media …><owner user_id/>…</doc></docs>')
    assert tree == {"docs": {"count": "50", "doc": [{"doc_id": "…", "media": "…",
                                                     "owner": {"user_id": "…"}}]}}
    assert example_tree("<note note_id [member_id]>text</note>") == {
        "note": {"note_id": "…", "member_id": "…", "_value": "text"}}
    assert example_tree("") == {}
    for spec in REGISTRY:  # every registered example can be shown
        examples(spec)


def test_unknown_method_is_a_404_page(client):
    page = client.simulate_get("/help/api/method/doc.nothing")
    assert page.status_code == 404
    assert "There is no method called <code>doc.nothing</code>" in page.text
    assert 'href="/help/api/method/doc.get"' in page.text


def test_an_unknown_name_is_shown_short_and_only_in_name_characters(client):
    page = client.simulate_get("/help/api/method/" + "a%E2%80%AEb%00c" + "x" * 6000)
    assert page.status_code == 404
    assert "There is no method called <code>a?b?c" + "x" * 59 + "</code>" in page.text
    assert "\u202e" not in page.text and "\x00" not in page.text


def test_posting_to_a_method_page_is_its_405_page(client):
    page = client.simulate_post("/help/api/method/doc.get")
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_about_links_point_at_our_pages(call, client):
    methods = call("api.methods.getList")["methods"]["method"]
    assert len(methods) == len(list(REGISTRY))
    for method in methods:
        assert method["about"] == f"http://falconframework.org/help/api/method/{method['name']}"
    path = methods[0]["about"].removeprefix("http://falconframework.org")
    assert client.simulate_get(path).status_code == 200


@pytest.mark.parametrize("spec", [s for s in REGISTRY if not s.response.strip()],
                         ids=lambda spec: spec.name)
def test_a_method_without_an_example_answers_the_status_alone(spec):
    """The page says "no payload" for these, so their handlers must return an empty tree."""
    import inspect

    returns = [line.strip() for line in inspect.getsource(spec.handler).splitlines()
               if line.strip().startswith("return")]
    assert returns and all(line == "return {}" for line in returns), returns
