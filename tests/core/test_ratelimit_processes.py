"""One key's budget across processes (issue 10, rate limits): two real servers (serve.py) on one
database and one Redis (TEST_REDIS_URL; skipped without it, run by .ci/run) take calls in turn;
the (limit+1)-th call across both is a 429 with Retry-After, and the headers count down across
both. The counters live under a prefix of this run's own, deleted afterwards: other runs and
people share that Redis."""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from email.message import Message
from urllib.parse import urlencode

import pytest

from keys import store
from tests.core.test_ratelimit import items
from tests.core.test_usage_processes import two_servers

TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "")
LIMIT = 6

pytestmark = pytest.mark.skipif(not TEST_REDIS_URL, reason="TEST_REDIS_URL is not set")


@pytest.fixture
def redis_prefix():
    """A key prefix of this test's own; its keys are deleted after the test."""
    import redis

    prefix = f"apitest:ratelimit:{os.getpid()}:{secrets.token_hex(4)}"
    yield prefix
    client = redis.Redis.from_url(TEST_REDIS_URL)
    for name in client.scan_iter(match=f"{prefix}:*"):
        client.delete(name)
    client.close()


def hello(base: str, api_key) -> tuple[int, Message, dict]:
    """test.hello on ``base``: HTTP status, headers, the JSON answer (a 429 too)."""
    url = f"{base}/api/test.hello/json?{urlencode({'api_key': api_key.key})}"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.headers, json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, json.loads(refused.read())


def test_two_processes_spend_one_keys_budget(settings, ctx, api_key, tmp_path, redis_prefix):
    import redis

    store.update_key(api_key.key, actor="cli", rate_limit=f"{LIMIT}/hour")
    shared = {"API_REDIS_URL": TEST_REDIS_URL, "API_REDIS_PREFIX": redis_prefix}
    with two_servers(settings, tmp_path, **shared) as bases:
        answers = [hello(bases[i % 2], api_key) for i in range(LIMIT + 2)]
    assert [status for status, _, _ in answers] == [200] * LIMIT + [429, 429]
    assert [int(headers["X-RateLimit-Remaining"]) for _, headers, _ in answers] == [
        5, 4, 3, 2, 1, 0, 0, 0]
    assert [items(headers["RateLimit"])["key-3600s"]["r"] for _, headers, _ in answers] == [
        5, 4, 3, 2, 1, 0, 0, 0]
    resets = {int(headers["X-RateLimit-Reset"]) for _, headers, _ in answers}
    assert max(resets) - min(resets) <= 1  # one window, whichever process answered
    for _, headers, body in answers[LIMIT:]:
        assert body["api"]["code"] == "112"
        wait = int(headers["Retry-After"])
        assert 3590 <= wait <= 3600 and wait >= items(headers["RateLimit"])["key-3600s"]["t"]
    assert redis.Redis.from_url(TEST_REDIS_URL).keys(f"{redis_prefix}:*")  # counted in Redis
