"""Limits that hold across processes (issue 11 item 4): three real servers (serve.py) on one
database (PostgreSQL when TEST_DATABASE_URL is set, else one SQLite file), requests released
together by a barrier. The monthly quota admits exactly its limit, the login throttle exactly its
number of guesses, and a key disabled with ``python -m keys disable`` is refused by every server
within a second."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from api.signing import md5
from api.web.accounts import MAX_FAILURES_PER_ACCOUNT
from keys import store
from tests.conftest import _multipart
from tests.core.test_serve import ROOT
from tests.core.test_usage_processes import servers
from tests.upload.conftest import jpeg

PROCESSES = 3
PER_PROCESS = 5  # requests each server gets at once


def race(bases: list[str], attempt) -> list[str]:
    """``attempt(base, n)`` PER_PROCESS times on each server, all released by one barrier once
    every thread has done its preparation (``attempt`` calls ``ready()`` before its request)."""
    barrier = threading.Barrier(PROCESSES * PER_PROCESS)
    jobs = [(bases[n % PROCESSES], n) for n in range(PROCESSES * PER_PROCESS)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda job: attempt(*job, lambda: barrier.wait(timeout=30)), jobs))


def quota_upload(api_key, token: str, photo: bytes):
    """``race``'s attempt: upload.file of ``photo`` with ``token``, answering the call's code."""

    def upload(base: str, n: int, ready) -> str:
        values = {"api_key": api_key.key, "auth_token": token}
        values["api_sig"] = md5.signature(values, "upload.file", api_key.secret)
        content_type, body = _multipart(values, {"file": (f"photo-{n}.jpg", photo)})
        request = urllib.request.Request(f"{base}/api/upload.file/json", data=body,
                                         headers={"Content-Type": content_type})
        ready()
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())["api"].get("code", "0")

    return upload


def wrong_guess(base: str, n: int, ready) -> str:
    """``race``'s attempt: a wrong password for ``target`` through the login form; "wrong" or
    "throttled"."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{base}/login", timeout=30) as page:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
    assert csrf is not None
    form = urlencode({"csrf_token": csrf.group(1), "username": "target",
                      "password": f"wrong-{n}"}).encode()
    ready()
    try:
        with opener.open(f"{base}/login", data=form, timeout=30) as answer:
            text = answer.read().decode()
    except urllib.error.HTTPError as refused:
        text = refused.read().decode()
    return ("wrong" if "Wrong user name" in text
            else "throttled" if "Too many failed logins" in text else text)


QUOTA = 10  # files the quota lets through in the races
QUOTA_CODES = ["0"] * QUOTA + ["4"] * (PROCESSES * PER_PROCESS - QUOTA)
GUESSES = (["throttled"] * (PROCESSES * PER_PROCESS - MAX_FAILURES_PER_ACCOUNT)
           + ["wrong"] * MAX_FAILURES_PER_ACCOUNT)


def test_monthly_quota_admits_exactly_its_limit(settings, ctx, owner, api_key, token_for,
                                                tmp_path):
    photo = jpeg()
    with servers(settings, tmp_path, PROCESSES, shared_dir=True,
                 API_MONTHLY_UPLOAD_BYTES=str(QUOTA * len(photo))) as bases:
        codes = race(bases, quota_upload(api_key, token_for(owner, doc="write"), photo))
    assert sorted(codes) == QUOTA_CODES


def test_login_throttle_allows_exactly_its_guesses(settings, ctx, tmp_path):
    store.add_user("target", "the-right-password")
    with servers(settings, tmp_path, PROCESSES) as bases:
        answers = race(bases, wrong_guess)
    assert sorted(answers) == GUESSES


def hello(base: str, api_key) -> str:
    url = f"{base}/api/test.hello/json?{urlencode({'api_key': api_key.key})}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())["api"].get("code", "0")


def change_key(settings, command: str, api_key) -> None:
    """``python -m keys <command> KEY`` in a process of its own, as an operator runs it."""
    subprocess.run([sys.executable, "-m", "keys", command, api_key.key,
                    "--db", settings.resolved_database_url], cwd=ROOT, check=True,
                   capture_output=True)


def still_answering(bases: list[str], api_key, code: str) -> set[str]:
    """The servers that have not answered ``code`` to the key within a second."""
    start, pending = time.monotonic(), set(bases)
    while pending and time.monotonic() - start < 1.0:
        pending = {base for base in pending if hello(base, api_key) != code}
        time.sleep(0.05)
    return pending


def test_a_disabled_key_stops_everywhere_within_a_second(settings, ctx, api_key, tmp_path):
    with servers(settings, tmp_path, 2) as bases:
        assert [hello(base, api_key) for base in bases] == ["0", "0"]  # cached by both now
        change_key(settings, "disable", api_key)
        assert not still_answering(bases, api_key, "101")
        change_key(settings, "enable", api_key)
        assert not still_answering(bases, api_key, "0")
