"""Statistics per key (issue 9 item 3): latency histograms and their percentiles, stats.json and
stats.csv equal to the calls made, the owner-only rule, retention, and the page's links."""

from __future__ import annotations

import csv
import io
import math
import random
from collections import Counter
from itertools import pairwise

import pytest

from api.models.usage import UsageLatency, UsageUser
from api.runtime.latency import BOUNDS, RATIO, UsagePruner, bucket_of, percentile
from keys.db import db
from keys.models import UsageCounter
from tests.auth.conftest import Browser

DAY = 86400


def code_of(answer: dict) -> int:
    return int(answer["api"].get("code", "0"))


# -- the histograms ----------------------------------------------------------------------------

def test_buckets_are_log_spaced_from_a_tenth_of_a_ms_to_over_a_minute():
    assert 24 <= len(BOUNDS) <= 32 and BOUNDS[0] == pytest.approx(0.1) and BOUNDS[-1] > 60_000
    assert all(b / a == pytest.approx(RATIO) for a, b in pairwise(BOUNDS))
    assert bucket_of(0) == 0 and bucket_of(0.1) == 0 and bucket_of(0.11) == 1
    assert bucket_of(10 ** 9) == len(BOUNDS)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_are_within_one_bucket_of_the_exact_ones(seed):
    rng = random.Random(seed)
    durations = sorted(math.exp(rng.uniform(math.log(0.2), math.log(5000))) for _ in range(2000))
    histogram = Counter(bucket_of(d) for d in durations)
    for q in (0.50, 0.95, 0.99):
        exact = durations[math.ceil(q * len(durations)) - 1]  # nearest rank
        answer = percentile(histogram, q)
        assert answer is not None
        # the documented precision: within a factor sqrt(RATIO) of the true value
        assert exact / math.sqrt(RATIO) <= answer <= exact * math.sqrt(RATIO), (q, exact, answer)


def test_percentiles_of_known_durations():
    # 90 calls of 1 ms, 9 of 100 ms, 1 of 2 s: p50 ~1 ms, p95 ~100 ms, p99 ~100 ms, max ~2 s
    histogram = Counter([bucket_of(1.0)] * 90 + [bucket_of(100.0)] * 9 + [bucket_of(2000.0)])
    for q, true in ((0.5, 1.0), (0.95, 100.0), (0.99, 100.0), (1.0, 2000.0)):
        assert true / math.sqrt(RATIO) <= percentile(histogram, q) <= true * math.sqrt(RATIO)
    assert percentile({}, 0.5) is None


# -- stats.json and stats.csv ------------------------------------------------------------------

@pytest.fixture
def owner_browser(client, owner) -> Browser:
    browser = Browser(client)
    assert browser.login("owner", "owner-password").status_code == 303
    return browser


def make_calls(call, token_for, member, owner) -> Counter:
    """Calls across several methods, some failing; Counter of (method, code)."""
    made: Counter = Counter()
    member_token, owner_token = token_for(member), token_for(owner)
    plan = ([("test.hello", {})] * 7 + [("test.echo", {"echo": "x"})] * 3
            + [("auth.checkToken", {})] * 2  # no token: an error
            + [("auth.checkToken", {"token": member_token})] * 2
            + [("auth.checkToken", {"token": owner_token})]
            + [("user.get", {"user_id": "999999"})] * 2)  # no such member: an error
    for method, params in plan:
        made[(method, code_of(call(method, **params)))] += 1
    return made


def test_stats_json_and_csv_equal_the_calls_made(owner_browser, call, ctx, clock, api_key,
                                                 token_for, member, owner):
    made = make_calls(call, token_for, member, owner)
    assert any(code for (_m, code) in made) and any(not code for (_m, code) in made)
    assert owner_browser.get(f"/apps/keys/{api_key.key}/stats.json").json["methods"] == []
    ctx.usage.flush()
    answer = owner_browser.get(f"/apps/keys/{api_key.key}/stats.json")
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    stats = answer.json
    assert stats["step"] == "hour" and len(stats["series"]) == 7 * 24 + 1
    total = sum(made.values())
    errors = sum(n for (_m, code), n in made.items() if code)
    assert sum(p["calls"] for p in stats["series"]) == total
    assert sum(p["errors"] for p in stats["series"]) == errors
    assert stats["series"][-1] == {"t": int(clock()) // 3600 * 3600, "calls": total,
                                   "errors": errors}
    per_method: Counter = Counter()
    per_method_errors: Counter = Counter()
    per_code: Counter = Counter()
    for (method, code), n in made.items():
        per_method[method] += n
        per_method_errors[method] += n if code else 0
        per_code[code] += n
    assert {m["method"]: m["calls"] for m in stats["methods"]} == per_method
    assert {m["method"]: m["errors"] for m in stats["methods"]} == {
        m: per_method_errors[m] for m in per_method}
    assert {c["code"]: c["calls"] for c in stats["codes"]} == per_code
    for row in stats["methods"]:
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert stats["users"] == [{"t": int(clock()) // DAY * DAY, "users": 2}]

    daily = owner_browser.get(f"/apps/keys/{api_key.key}/stats.json?step=day").json
    assert sum(p["calls"] for p in daily["series"]) == total
    assert all(p["t"] % DAY == 0 for p in daily["series"])

    sheet = owner_browser.get(f"/apps/keys/{api_key.key}/stats.csv")
    assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/csv")
    assert sheet.headers["content-disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(sheet.text)))
    assert rows[0] == ["time", "method", "code", "calls", "mean_ms", "p95_ms"]
    assert {(r[1], int(r[2])): int(r[3]) for r in rows[1:]} == made
    assert all(float(r[4]) > 0 and float(r[5]) > 0 for r in rows[1:])


def test_flushes_add_up(owner_browser, call, ctx, api_key):
    for _ in range(3):
        call("test.hello")
        call("test.hello")
        ctx.usage.flush()
    stats = owner_browser.get(f"/apps/keys/{api_key.key}/stats.json").json
    assert stats["methods"][0]["method"] == "test.hello" and stats["methods"][0]["calls"] == 6
    with db.connection_context():
        assert sum(r.calls for r in UsageLatency.select()) == 6


@pytest.mark.parametrize("query, message", [
    ("from=abc", "from must be UNIX seconds"), ("to=-5", "to must be UNIX seconds"),
    ("step=week", "step must be hour or day"), ("from=200&to=100", "from must not be after to"),
    ("from=0&to=40000000", "at most 400 days")])
def test_bad_ranges_are_400_with_a_message(owner_browser, api_key, query, message):
    answer = owner_browser.get(f"/apps/keys/{api_key.key}/stats.json?{query}")
    assert answer.status_code == 400 and message in answer.json["error"]
    assert owner_browser.get(f"/apps/keys/{api_key.key}/stats.csv?{query}").status_code == 400


def test_a_second_owner_gets_404_on_the_statistics(client, api_key, member, call, ctx):
    call("test.hello")
    ctx.usage.flush()
    other = Browser(client)
    other.login("member", "member-password")
    for suffix in ("stats", "stats.json", "stats.csv"):
        for key in (api_key.key, "f" * 32):
            answer = other.get(f"/apps/keys/{key}/{suffix}")
            assert answer.status_code == 404 and "test.hello" not in answer.text
    assert Browser(client).get(f"/apps/keys/{api_key.key}/stats.json").status_code == 303


def test_the_page_links_its_script_and_the_key_page_links_it(owner_browser, api_key):
    page = owner_browser.get(f"/apps/keys/{api_key.key}")
    assert f'href="/apps/keys/{api_key.key}/stats"' in page.text
    stats = owner_browser.get(f"/apps/keys/{api_key.key}/stats")
    assert stats.status_code == 200 and "No calls yet" in stats.text
    assert "script-src 'self'" in stats.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]  # others unchanged
    for name in ("uplot.min.js", "keys_stats.js"):
        url = stats.text.split(f'/static/{name}?v=')[0].rsplit('"', 1)[1] + f"/static/{name}"
        served = owner_browser.get(url)
        assert served.status_code == 200
        assert served.headers["content-type"].startswith("text/javascript")
    assert owner_browser.get("/static/uplot.LICENSE.txt").text.startswith("The MIT License")


# -- retention ---------------------------------------------------------------------------------

def test_retention_drops_old_rows_only(call, ctx, clock, api_key, token_for, member):
    token = token_for(member)
    call("auth.checkToken", token=token)
    ctx.usage.flush()
    clock.advance(401 * DAY)
    call("auth.checkToken", token=token)
    ctx.usage.flush()
    with db.connection_context():
        assert UsageCounter.select().count() == 2 and UsageUser.select().count() == 2
    pruner = UsagePruner(clock, 400)
    assert pruner.flush() == 3  # one old row in each table
    with db.connection_context():
        now_hour = int(clock()) // 3600
        assert [r.hour for r in UsageCounter.select()] == [now_hour]
        assert [r.hour for r in UsageLatency.select()] == [now_hour]
        assert [r.day for r in UsageUser.select()] == [int(clock()) // DAY]
    assert pruner.flush() == 0
    assert UsagePruner(clock, 0).flush() == 0  # 0 keeps everything
