"""Rate limits (api/runtime/ratelimit.py): 112 per key, 113 per client address, HTTP 429 with
Retry-After and the envelope in the requested format, the RateLimit headers on every API response,
a key's own limit, frob/sign-up/login limits, and a Redis that fails.

The ``limits`` library counts on the real clock; each test's windows are a minute or longer, so
none rolls over while it runs."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time

import pytest

from api.config import Settings
from api.models.grants import Frob
from api.runtime import ratelimit
from api.runtime.ratelimit import (
    RateLimiter,
    WindowCounts,
    build_limiter,
    counter_key,
    windows,
    within,
)
from keys import store
from keys.db import db
from keys.models import User
from tests.auth.conftest import Browser, csrf_of


def items(header: str) -> dict[str, dict[str, int]]:
    """A RateLimit or RateLimit-Policy value as {policy: {parameter: value}}."""
    parsed = {}
    for item in header.split(", "):
        name, *params = item.split(";")
        parsed[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return parsed


def test_every_api_response_carries_the_headers_counting_down(call, limit):
    limit(per_key="5/minute;100/hour", per_address="1000/hour")
    before = time.time()
    for left in (4, 3, 2):
        answer = call.raw("test.hello")
        assert answer.status_code == 200
        assert items(answer.headers["RateLimit-Policy"]) == {
            "address-3600s": {"q": 1000, "w": 3600}, "key-60s": {"q": 5, "w": 60},
            "key-3600s": {"q": 100, "w": 3600}}
        state = items(answer.headers["RateLimit"])
        assert state["key-60s"]["r"] == left and 59 <= state["key-60s"]["t"] <= 60
        assert state["key-3600s"]["r"] == left + 95
        assert state["address-3600s"]["r"] == 1000 - (5 - left)
        # the binding window: the fewest calls left
        assert answer.headers["X-RateLimit-Limit"] == "5"
        assert answer.headers["X-RateLimit-Remaining"] == str(left)
        assert before + 59 <= int(answer.headers["X-RateLimit-Reset"]) <= time.time() + 61
    # failures carry them too: a known key's, and calls no key is known for (address only)
    assert items(call.raw("doc.get", doc_id="1").headers["RateLimit"])["key-60s"]["r"] == 1
    for answer in (call.raw("no.such.method"), call.raw("test.hello", "yaml"),
                   call.client.simulate_get("/api/test.hello/json")):
        assert answer.status_code == 200
        assert list(items(answer.headers["RateLimit"])) == ["address-3600s"]
    assert items(answer.headers["RateLimit"])["address-3600s"]["r"] == 1000 - 7


@pytest.mark.parametrize("fmt", ["json", "xml", "php"])
def test_an_exceeded_key_limit_is_a_429_with_retry_after_and_112_in_the_format(call, limit, fmt):
    limit(per_key="2/minute", per_address="1000/hour")
    assert [call.raw("test.hello", fmt).status_code for _ in range(2)] == [200, 200]
    refused = call.raw("test.hello", fmt)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert items(refused.headers["RateLimit"])["key-60s"] == {
        "r": 0, "t": int(refused.headers["Retry-After"])}
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    if fmt == "json":
        assert refused.json["api"] == {"status": "error", "code": "112",
                                       "message": "Application Quota Error"}
    elif fmt == "xml":
        assert b'code="112" message="Application Quota Error"' in refused.content
    else:
        assert b's:4:"code";s:3:"112";' in refused.content
    assert refused.headers["Content-Type"].startswith(
        {"json": "application/json", "xml": "text/xml", "php": "text/plain"}[fmt])


def test_an_exceeded_address_limit_is_113_before_the_key_is_even_looked_up(call, limit, api_key):
    limit(per_key="100/minute", per_address="3/minute")
    assert call.raw("test.hello").status_code == 200
    assert call.raw("test.hello", api_key="f" * 32).json["api"]["code"] == "101"
    assert call.raw("test.hello", sign=False, api_key="").json["api"]["code"] == "100"
    refused = [call.raw("test.hello", "xml"),
               call.raw("test.hello", api_key="f" * 32)]  # guessing keys: 113 too
    assert b'code="113" message="Client IP Quota Error"' in refused[0].content
    assert refused[1].json["api"]["code"] == "113"
    for answer in refused:
        assert answer.status_code == 429 and 1 <= int(answer.headers["Retry-After"]) <= 60
        assert list(items(answer.headers["RateLimit"])) == ["address-60s"]
    # calls refused for the address spent nothing of the key's budget (one call went through)
    other = call.client.simulate_get("/api/test.hello/json", params={"api_key": api_key.key},
                                     remote_addr="192.0.2.9")
    assert items(other.headers["RateLimit"])["key-60s"]["r"] == 98


def test_a_refused_burst_does_not_eat_the_longer_window(call, limit):
    limit(per_key="2/minute;100/hour", per_address="1000/hour")
    for _ in range(2):
        call.raw("test.hello")
    for _ in range(3):
        refused = call.raw("test.hello")
        assert refused.status_code == 429
        assert items(refused.headers["RateLimit"])["key-3600s"]["r"] == 98


def test_a_keys_own_limit_replaces_the_default_either_way(ctx, call, limit, owner, api_key):
    limit(per_key="2/minute", per_address="1000/hour")
    tighter = store.create_key(owner, "Tight")
    store.update_key(tighter.key, actor="cli", rate_limit="1/minute")
    store.update_key(api_key.key, actor="cli", rate_limit="5/minute")  # an operator raised it
    ctx.keys.invalidate()
    assert [call.raw("test.hello").status_code for _ in range(6)] == [200] * 5 + [429]
    assert items(call.raw("test.hello").headers["RateLimit-Policy"])["key-60s"]["q"] == 5
    assert [call.raw("test.hello", key=tighter).status_code for _ in range(2)] == [200, 429]
    store.update_key(api_key.key, actor="cli", rate_limit="")  # back to the default
    ctx.keys.invalidate()
    assert items(call.raw("test.hello").headers["RateLimit-Policy"])["key-60s"]["q"] == 2


def test_a_key_limit_that_does_not_parse_falls_back_to_the_default(ctx, call, limit, api_key):
    """Written by hand in the database: never an open door, never a 500."""
    limit(per_key="3/minute", per_address="")
    with db.connection_context():
        type(api_key).update(rate_limit="lots").where(type(api_key).key == api_key.key).execute()
    ctx.keys.invalidate()
    assert items(call.raw("test.hello").headers["RateLimit-Policy"]) == {
        "key-60s": {"q": 3, "w": 60}}


def test_frob_creation_is_limited_per_address(ctx, call, limit):
    limit(frobs="2/hour", per_address="1000/hour", per_key="1000/hour")
    made = [call.raw("auth.getFrob") for _ in range(3)]
    assert [answer.status_code for answer in made] == [200, 200, 429]
    assert made[2].json["api"]["code"] == "113"
    assert 3500 <= int(made[2].headers["Retry-After"]) <= 3600
    assert items(made[1].headers["RateLimit"])["frob-3600s"]["r"] == 0
    with db.connection_context():
        assert Frob.select().count() == 2
    other = call.client.simulate_get("/api/auth.getFrob/json", remote_addr="192.0.2.7",
                                     params=signed_frob_params(call))
    assert other.status_code == 200 and "frob" in other.json["auth"]  # another address


def signed_frob_params(call) -> dict[str, str]:
    from api.signing import md5

    params = {"api_key": call.key.key}
    params["api_sig"] = md5.signature(params, "auth.getFrob", call.key.secret)
    return params


def test_signup_is_limited_per_address(client, limit):
    limit(signup="2/hour")
    browser = Browser(client)
    answers = []
    for n in range(3):
        page = browser.get("/signup")
        answers.append(browser.post("/signup", {
            "csrf_token": csrf_of(page.text), "username": f"newcomer{n}",
            "password": "long-enough-password"}))
        browser.cookies.pop("sid", None)
    assert [answer.status_code for answer in answers] == [303, 303, 429]
    assert "Too many attempts from your address" in answers[2].text
    assert 3500 <= int(answers[2].headers["Retry-After"]) <= 3600
    with db.connection_context():
        assert [u.username for u in User.select().order_by(User.id)] == ["newcomer0", "newcomer1"]
    assert Browser(client, addr="192.0.2.8").get("/signup").status_code == 200


def test_login_is_limited_per_address_right_password_or_not(client, limit, owner):
    limit(login="3/hour")
    browser = Browser(client)
    assert browser.login("owner", "wrong-password").status_code == 400
    assert browser.login("owner", "owner-password").status_code == 303
    browser.cookies.clear()
    assert browser.login("owner", "owner-password").status_code == 303
    browser.cookies.clear()
    refused = browser.login("owner", "owner-password")
    assert refused.status_code == 429 and "sid" not in refused.cookies
    assert int(refused.headers["Retry-After"]) >= 1
    assert Browser(client, addr="192.0.2.8").login("owner", "owner-password").status_code == 303


def test_signup_says_a_name_is_taken_without_hashing_a_password(client, owner, monkeypatch):
    """user.get already answers for any name (docs/protocol-choices.md): sign-up says no more,
    and a probe for a taken name costs no argon2 run."""
    monkeypatch.setattr(store, "hash_password", lambda password: pytest.fail("hashed"))
    browser = Browser(client)
    page = browser.get("/signup")
    taken = browser.post("/signup", {"csrf_token": csrf_of(page.text), "username": "owner",
                                     "password": "long-enough-password"})
    assert taken.status_code == 400 and "This user name is taken" in taken.text


def test_an_unreachable_redis_counts_in_memory_and_says_so_once(caplog):
    """Fail over, not open and not closed: limits hold per process until Redis is back; the log
    never shows the URL (it may hold a password)."""
    settings = Settings(redis_url="redis://:hunter2-secret@127.0.0.1:1/0",
                        ratelimit_per_key="2/minute")
    limiter = build_limiter(settings)
    quotas: list = []
    with caplog.at_level(logging.WARNING, logger="api.ratelimit"):
        spent = [limiter.spend(quotas, "key", "k") for _ in range(3)]
    assert spent == [False, False, True]
    assert [q.remaining for q in quotas] == [1, 0, 0]
    assert len(caplog.records) == 1 and "redis unavailable" in caplog.text
    assert "hunter2" not in caplog.text and "127.0.0.1" not in caplog.text


def test_the_fallback_gives_way_to_redis_again(monkeypatch):
    clock = [0.0]
    primary, fallback = WindowCounts(), WindowCounts()
    limiter = RateLimiter({"key": "5/minute"}, primary, fallback=fallback, clock=lambda: clock[0])
    limiter._failed_until = 30.0
    limiter.spend([], "key", "k")
    counter = counter_key("key", "k", 60)
    assert (primary.get(counter), fallback.get(counter)) == (0, 1)
    clock[0] = 31.0
    limiter.spend([], "key", "k")
    assert primary.get(counter) == 1


def test_a_policy_that_does_not_parse_stops_the_start():
    with pytest.raises(ValueError, match="API_RATELIMIT_PER_ADDRESS: not a rate limit"):
        build_limiter(Settings(ratelimit_per_address="often"))


def test_windows_are_shortest_first_and_one_per_length():
    assert [(w.amount, w.get_expiry()) for w in windows("5000/hour;10/second;20/second")] == [
        (10, 1), (5000, 3600)]
    assert windows("") == ()


@pytest.mark.parametrize("policy, ceiling, ok", [
    ("10/second", "50/second;50000/hour", True),  # 10 × 3600 = 36,000 a hour at most
    ("10/second;5000/hour", "50/second;50000/hour", True),
    ("100/second;5000/hour", "50/second;50000/hour", False),
    ("1000/hour", "50/second;50000/hour", False),  # all 1000 could come in one second
    ("50/second;1000/hour", "50/second;50000/hour", True),
    ("13/second", "50000/hour", True),  # 13 × 3600 = 46,800
    ("14/second", "50000/hour", False),
    ("1000000/second", "", True),  # no default: nothing to stay within
])
def test_within_compares_a_policy_with_the_default(policy, ceiling, ok):
    assert within(policy, ceiling) is ok


def test_headers_name_each_window_and_the_binding_one():
    from api.core.context import Quota

    quotas = [Quota("address-1s", 20, 1, 19, 1000.4), Quota("key-3600s", 100, 3600, 3, 4599.2)]
    assert dict(ratelimit.headers(quotas, now=1000.0)) == {
        "RateLimit-Policy": '"address-1s";q=20;w=1, "key-3600s";q=100;w=3600',
        "RateLimit": '"address-1s";r=19;t=1, "key-3600s";r=3;t=3600',
        "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "4600"}
    assert ratelimit.headers([]) == []
    assert ratelimit.retry_after(quotas, now=1000.0) == 1  # nothing exceeded: at least 1



# -- review of issue 10 (rate limits) -----------------------------------------------------------

def test_a_changed_amount_keeps_counting_what_was_spent(ctx, call, limit, api_key):
    """The counter is the scope's, the identity's and the window length's: an owner who edits
    "…/minute" by one does not get a fresh budget (limits' key_for holds the amount)."""
    limit(per_key="5/minute", per_address="1000/hour")
    assert [call.raw("test.hello").status_code for _ in range(6)] == [200] * 5 + [429]
    for policy in ("4/minute", "6/minute"):
        store.update_key(api_key.key, actor="owner", rate_limit=policy)
        ctx.keys.invalidate()
        assert call.raw("test.hello").status_code == 429


def test_the_memory_limiter_takes_many_threads_at_once(monkeypatch):
    """32 threads meeting at each window's end: every call counted once, nothing raised (limits
    5.8's MemoryStorage, used before, restarted its expiry timer racily here)."""
    import sys
    import threading

    failures: list[str] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda hook: failures.append(repr(hook.exc_value)))
    monkeypatch.setattr(threading, "excepthook", lambda hook: failures.append(repr(hook.exc_value)))
    limiter = RateLimiter({"key": "1000000/second;1000000/hour"}, WindowCounts())
    start = threading.Barrier(32)

    def hammer() -> None:
        for _ in range(60):
            try:
                start.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
            try:
                limiter.spend([], "key", "k")
            except Exception as error:  # what would have been a 500
                failures.append(repr(error))
            time.sleep(0.015)  # the 10 ms expiry timer ends: the next calls restart it

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []
    assert limiter.storage.get(counter_key("key", "k", 3600)) == 32 * 60


def test_a_failing_limiter_lets_calls_through_and_logs_its_type_once(ctx, call, limit, caplog):
    limit(per_key="5/minute", per_address="1000/hour")

    class Broken(RuntimeError):
        pass

    def fail(*args, **kwargs):
        raise Broken("secret-looking detail")

    ctx.limits.storage.spend = ctx.limits._counted = fail  # memory, or Redis with its fallback
    with caplog.at_level(logging.ERROR, logger="api.ratelimit"):
        answers = [call.raw("test.hello") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200] * 3
    assert "RateLimit" not in answers[0].headers
    assert len(caplog.records) == 1 and "Broken" in caplog.text
    assert "secret-looking" not in caplog.text


def test_an_address_over_its_budget_has_no_upload_spooled(call, limit, owner, token_for,
                                                          monkeypatch):
    from api.core import transport
    from tests.upload.conftest import jpeg

    limit(per_address="1/minute")
    spooled: list[int] = []
    real = transport._spool
    monkeypatch.setattr(transport, "_spool",
                        lambda *args: spooled.append(1) or real(*args))  # type: ignore[func-returns-value]
    token = token_for(owner, doc="write")
    first = call.raw("upload.file", token=token, files={"file": ("a.jpg", jpeg())})
    assert first.status_code == 200 and spooled == [1]
    refused = call.raw("upload.file", token=token, files={"file": ("a.jpg", jpeg())})
    assert refused.status_code == 429 and refused.json["api"]["code"] == "113"
    assert spooled == [1]  # refused before its file part was read
    assert items(refused.headers["RateLimit"])["address-60s"]["r"] == 0


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")


@pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set")
def test_redis_windows_end_to_the_millisecond():
    """TTL answers whole seconds (rounded): 0.4 s before a window's end it said 0, so a 429
    showed t=0. PTTL, rounded up in the headers: a client that waits t seconds gets through."""
    import redis

    prefix = f"apitest-{os.getpid()}-{secrets.token_hex(4)}"
    limiter = build_limiter(Settings(redis_url=TEST_REDIS_URL, redis_prefix=prefix,
                                     ratelimit_per_key="1/second"))
    try:
        assert not limiter.spend([], "key", "k")
        time.sleep(0.6)
        quotas: list = []
        assert limiter.spend(quotas, "key", "k")
        now = time.time()
        assert 0.2 < quotas[0].reset_at - now < 0.45
        assert items(dict(ratelimit.headers(quotas, now=now))["RateLimit"])["key-1s"]["t"] == 1
        assert ratelimit.retry_after(quotas, now=now) == 1
        time.sleep(quotas[0].reset_at - time.time() + 0.01)
        assert not limiter.spend([], "key", "k")
    finally:
        client = redis.Redis.from_url(TEST_REDIS_URL)
        for name in client.scan_iter(match=f"{prefix}:*"):
            client.delete(name)
        client.close()


def test_a_window_made_while_another_thread_sweeps_is_kept():
    """A spend waiting for the lock while another thread sweeps (which replaces the dict) must
    count in the new dict, not the one the sweep dropped (the review's race)."""
    now = [1000.0]
    counts = WindowCounts(clock=lambda: now[0])
    plan = (ratelimit.Window.of("address", ratelimit.windows("10/hour")[0]),)
    counts.spend(plan, "warm")  # the first sweep is done; the next is due at 1060
    now[0] = 1070.0
    counts._lock.acquire()
    waiting = threading.Thread(target=counts.spend, args=(plan, "A"))
    waiting.start()
    time.sleep(0.2)  # it waits for the lock
    counts._windows = {k: w for k, w in counts._windows.items() if w[1] > now[0]}  # a sweep
    counts._next_sweep = now[0] + counts.SWEEP_SECONDS
    counts._lock.release()
    waiting.join()
    assert counts.get(counter_key("address", "A", 3600)) == 1
