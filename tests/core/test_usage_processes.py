"""Counting across processes (issue 9 item 3): two real servers (serve.py) on one database
(PostgreSQL when TEST_DATABASE_URL is set, else one SQLite file), calls spread over both, both
stopped with SIGTERM; the counters, histograms and member days add up to exactly the calls made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from api.models.usage import UsageLatency, UsageUser
from api.signing import md5
from keys.db import db
from keys.models import UsageCounter
from tests.auth.conftest import Browser
from tests.conftest import free_port
from tests.core.test_serve import ROOT, wait_for_line


def start_server(settings, tmp_path, name: str, **extra_env: str):
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1",
           "API_USAGE_FLUSH_SECONDS": "3600",  # only the stop flushes: SIGTERM must write them
           "API_ACCESS_LOG": "0", **extra_env}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    process = subprocess.Popen(
        [sys.executable, "serve.py", "--port", str(port), "--db", settings.resolved_database_url,
         "--data-dir", str(tmp_path / name), "--threads", "4"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    wait_for_line(process, "listening on")
    return process, f"http://127.0.0.1:{port}"


def two_servers(settings, tmp_path, **extra_env: str):
    """Two servers on one database (``servers``)."""
    return servers(settings, tmp_path, 2, **extra_env)


@contextmanager
def servers(settings, tmp_path, count: int, *, shared_dir: bool = False,
            **extra_env: str) -> Iterator[list[str]]:
    """``count`` servers on one database (and one data dir if ``shared_dir``): their base URLs;
    all stopped with SIGTERM after the block (a clean exit, status 0, is part of the test),
    killed if the block failed."""
    started = [start_server(settings, tmp_path, "shared" if shared_dir else f"server-{n}",
                            **extra_env) for n in range(count)]
    try:
        yield [base for _, base in started]
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, _ in started:
            assert process.wait(timeout=30) == 0
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.kill()


def api_call(base: str, api_key, method: str, **params: str) -> int:
    values = {"api_key": api_key.key, **params}
    if "auth_token" in values:
        values["api_sig"] = md5.signature(values, method, api_key.secret)
    with urllib.request.urlopen(f"{base}/api/{method}/json?{urlencode(values)}",
                                timeout=10) as answer:
        return int(json.loads(answer.read())["api"].get("code", "0"))


def test_two_processes_count_every_call_exactly(settings, ctx, client, api_key, owner, member,
                                                token_for, tmp_path):
    token = token_for(member)
    made = 0
    errors = 0
    with two_servers(settings, tmp_path) as bases:
        for i in range(40):
            base = bases[i % 2]
            if i % 5 == 0:
                code = api_call(base, api_key, "user.get", user_id="999999")
            elif i % 5 == 1:
                code = api_call(base, api_key, "auth.checkToken", auth_token=token)
            else:
                code = api_call(base, api_key, "test.hello")
            made += 1
            errors += code != 0
    assert errors == 8
    with db.connection_context():
        assert sum(r.calls for r in UsageCounter.select()) == made
        assert sum(r.calls for r in UsageLatency.select()) == made
        # both processes saw the member on this day: one row, written twice, kept once
        assert [r.user_id for r in UsageUser.select()] == [member.id]
    browser = Browser(client)
    assert browser.login("owner", "owner-password").status_code == 303
    # the servers ran on the real clock, the test's app on a fake one: ask for the real hours
    now = int(time.time())
    stats = browser.get(f"/apps/keys/{api_key.key}/stats.json?from={now - 3600}&to={now + 60}"
                        ).json
    assert sum(p["calls"] for p in stats["series"]) == made
    assert sum(p["errors"] for p in stats["series"]) == errors
    assert {m["method"]: m["calls"] for m in stats["methods"]} == {
        "test.hello": 24, "auth.checkToken": 8, "user.get": 8}
