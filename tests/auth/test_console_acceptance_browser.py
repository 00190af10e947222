"""Acceptance, issue 9 item 1, end to end in Debian chromium (Playwright with executable_path,
never a downloaded browser): an owner logs in, registers a desktop key through the form, reads its
api_key from the page and its secret through the reveal button (a POST), makes 60 signed API calls
over HTTP across five methods (some failing), and after a flush the key's statistics page, reached
through the link on the key's page, draws its chart with no console error and shows, like
stats.json fetched with the browser's session, exactly the calls made, method by method and code
by code. The request log shows the 105s with the string the server signed (``<secret>`` in place
of the secret); neither it, the statistics page nor stats.json holds the secret."""

from __future__ import annotations

import html
import json
from collections import Counter

import requests

from api.signing import md5
from keys.models import ApiKey
from tests.auth.conftest import chart_drawn

WRONG_SECRET = "0" * 32
UNKNOWN_METHOD = "test.noSuchMethod"


def api_call(http: requests.Session, base_url: str, method: str, api_key: str, secret: str,
             **params: str) -> int:
    """One GET /api/<method>/json signed with ``secret``; the API code of the answer."""
    values = {"api_key": api_key, **params}
    values["api_sig"] = md5.signature(values, method, secret)
    answer = http.get(f"{base_url}/api/{method}/json", params=values, timeout=10)
    return int(answer.json()["api"].get("code", "0"))


def table(page, selector: str) -> list[list[str]]:
    """The cells of a table body's rows, as text."""
    return [[cell.inner_text().strip() for cell in row.query_selector_all("td")]
            for row in page.query_selector_all(f"{selector} tbody tr")]


def test_a_new_desktop_key_s_calls_show_in_its_statistics_in_chromium(chromium, live_server, ctx,
                                                                      owner, tmp_path):
    base = live_server.base_url
    context = chromium.new_context(viewport={"width": 1100, "height": 1400})
    problems: list[str] = []
    try:
        page = context.new_page()
        # chromium asks for /favicon.ico (we have none): that 404 is the one allowed
        page.on("console", lambda m: problems.append(f"{m.text} @ {m.location.get('url')}")
                if m.type == "error" and not m.location.get("url", "").endswith("/favicon.ico")
                else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

        # -- log in and register a desktop key through the form ------------------------------
        page.goto(base + "/apps/keys")
        assert "/login" in page.url
        page.fill("input[name=username]", "owner")
        page.fill("input[name=password]", "owner-password")
        page.click("button:has-text('Log in')")
        page.wait_for_url("**/apps/keys")
        page.fill("#register input[name=name]", "Acceptance uploader")
        page.fill("#register textarea[name=description]", "Sixty calls, then the statistics")
        page.check("#register input[value=desktop]")
        page.click("#register button:has-text('Register')")
        page.wait_for_url("**/apps/keys/*")
        api_key = page.text_content("#api-key").strip()
        assert len(api_key) == 32 and page.url.endswith("/apps/keys/" + api_key)
        assert page.query_selector("#secret") is None
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("button:has-text('Reveal the secret')")
        assert answer.value.request.method == "POST" and answer.value.ok
        page.wait_for_selector("#secret")
        secret = page.text_content("#secret").strip()
        row = ApiKey.get(ApiKey.key == api_key)
        assert (row.auth_type, row.owner_id, row.secret) == ("desktop", owner.id, secret)
        key_page = page.url

        # -- 60 calls over HTTP, signed with the secret read from the page -------------------
        made: Counter = Counter()  # (method as sent, code) -> calls
        bad_strings: list[str] = []
        with requests.Session() as http:
            for _ in range(20):
                made[("test.hello", api_call(http, base, "test.hello", api_key, secret))] += 1
            for n in range(15):
                made[("test.echo", api_call(http, base, "test.echo", api_key, secret,
                                            echo=f"fine{n}"))] += 1
            for _ in range(10):
                made[("api.methods.getList", api_call(http, base, "api.methods.getList",
                                                      api_key, secret))] += 1
            for n in range(5):  # signed with a wrong secret: 105
                made[("test.echo", api_call(http, base, "test.echo", api_key, WRONG_SECRET,
                                            echo=f"bad{n}"))] += 1
                bad_strings.append(md5.signature_base_string(
                    {"api_key": api_key, "echo": f"bad{n}"}, "test.echo", "<secret>"))
            for _ in range(5):  # no doc_id: doc.get's own "missing" code, 1 (Document not found)
                made[("doc.get", api_call(http, base, "doc.get", api_key, secret))] += 1
            for _ in range(5):
                made[(UNKNOWN_METHOD, api_call(http, base, UNKNOWN_METHOD, api_key, secret))] += 1
        assert sum(made.values()) == 60
        assert made == {("test.hello", 0): 20, ("test.echo", 0): 15,
                        ("api.methods.getList", 0): 10, ("test.echo", 105): 5,
                        ("doc.get", 1): 5, (UNKNOWN_METHOD, 103): 5}

        # Calls to an unknown method are counted for no key: the Dispatcher (api/core/dispatch.py)
        # looks the method up before the key, so a 103 ends with key None, and _account records
        # it under api_key "" and method "-" (nor does _log_failure log it for the key). So this
        # key's statistics hold exactly the other 55 calls, and neither 103 nor the name sent.
        expected = {pair: n for pair, n in made.items() if pair[0] != UNKNOWN_METHOD}
        per_method: Counter = Counter()
        per_method_errors: Counter = Counter()
        per_code: Counter = Counter()
        for (method, code), n in expected.items():
            per_method[method] += n
            per_method_errors[method] += n if code else 0
            per_code[code] += n
        assert per_method == {"test.hello": 20, "test.echo": 20, "api.methods.getList": 10,
                              "doc.get": 5}
        assert per_code == {0: 45, 105: 5, 1: 5}

        # -- a flush, as the usage and request-log flushers do every few seconds -------------
        ctx.usage.flush()
        ctx.request_log.flush()

        # -- the statistics page, through the link on the key's page -------------------------
        page.goto(key_page)
        page.click("#stats-link")
        page.wait_for_url(f"**/apps/keys/{api_key}/stats")
        page.wait_for_selector("#chart canvas")
        page.wait_for_selector("#methods tbody tr")
        page.wait_for_function("document.querySelector('#status').textContent === ''")
        drawn = chart_drawn(page)
        assert drawn["w"] > 300 and drawn["h"] > 200 and drawn["inked"] > 500, drawn
        assert page.is_hidden("#empty")

        methods = {cells[0]: cells[1:] for cells in table(page, "#methods")}
        assert set(methods) == set(per_method)  # neither UNKNOWN_METHOD nor "-"
        for method, cells in methods.items():
            assert (int(cells[0]), int(cells[1])) == (per_method[method],
                                                      per_method_errors[method]), method
            p50, p95, p99 = (float(x) for x in cells[2:5])
            assert 0 < p50 <= p95 <= p99, (method, cells)
        codes = {int(cells[0]): int(cells[1]) for cells in table(page, "#codes")}
        assert codes == per_code  # no 103

        # stats.json, fetched by the page itself (the browser's session cookie)
        fetched = page.evaluate("""async (url) => {
            const r = await fetch(url, {credentials: 'same-origin'});
            return {status: r.status, text: await r.text()};
        }""", f"/apps/keys/{api_key}/stats.json")
        assert fetched["status"] == 200
        stats = json.loads(fetched["text"])
        assert {m["method"]: m["calls"] for m in stats["methods"]} == per_method
        assert {m["method"]: m["errors"] for m in stats["methods"]} == {
            m: per_method_errors[m] for m in per_method}
        assert {c["code"]: c["calls"] for c in stats["codes"]} == per_code
        assert sum(p["calls"] for p in stats["series"]) == 55
        assert sum(p["errors"] for p in stats["series"]) == 10
        assert secret not in fetched["text"] and secret not in page.content()

        page.screenshot(path=str(tmp_path / "acceptance-stats.png"), full_page=True)
        assert (tmp_path / "acceptance-stats.png").stat().st_size > 10_000

        # -- the request log: the 105s with the string the server signed ---------------------
        page.goto(key_page)
        page.click("#log-link")
        page.wait_for_url(f"**/apps/keys/{api_key}/log")
        entries = [[td.inner_text().strip() for td in tr.query_selector_all("td")]
                   for tr in page.query_selector_all("#log tr.entry")]
        logged = Counter((cells[1], int(cells[2])) for cells in entries)
        # the failed calls of this key only: the 105s and doc.get's 1s, not the unknown method's
        assert logged == {("test.echo", 105): 5, ("doc.get", 1): 5}, entries
        shown = [code.inner_text() for code in page.query_selector_all("#log code.base-string")]
        assert sorted(shown) == sorted(bad_strings)
        assert all(s.endswith("test.echo<secret>") for s in shown)
        content = html.unescape(page.content())
        assert secret not in content
        page.screenshot(path=str(tmp_path / "acceptance-log.png"), full_page=True)

        assert problems == []
    finally:
        context.close()
