"""Crash and outage recovery against a real server (issue 10 item 6): ``serve.py`` killed with
SIGKILL while it stores a large upload, then restarted; and the database taken away while the worker
processes tickets, then given back, without a restart. Afterwards every ticket is done, every done
ticket has its doc, every media file belongs to a doc and every doc's files exist, and neither the
spool nor the incoming dir keeps anything it should not.

These tests run in real time (a server process, a lock held past the busy timeout); the rest of
the suite uses the fake clock. Leases are 2 s here so that expired ones come round quickly.
"""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image

from api.media.queue import DONE, FAILED
from api.models.docs import Doc, UploadTicket
from api.signing import md5
from keys.db import db
from tests.conftest import TEST_DATABASE_URL, free_port
from tests.upload.conftest import doc_files, jpeg, media_files

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 2


class Served:
    """``serve.py`` in a subprocess on the test's database and data dir, logging to a file."""

    def __init__(self, settings: Any, log: Path) -> None:
        self.settings = settings
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""

    def start(self) -> None:
        port = free_port()
        env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", "API_ACCESS_LOG": "0",
               "API_UPLOAD_LEASE_SECONDS": str(LEASE_SECONDS), "API_UPLOAD_POLL_SECONDS": "0.2"}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "serve.py", "--port", str(port), "--threads", "4",
                 "--db", self.settings.resolved_database_url,
                 "--data-dir", self.settings.data_dir],
                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        self.base = f"http://127.0.0.1:{port}"
        until(lambda: "listening on" in self.log.read_text(), 20, self.log)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL
        self.process.wait(timeout=10)

    def stop(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            assert self.process.wait(timeout=30) == 0, self.log.read_text()


def until(condition: Callable[[], bool], seconds: float, log: Path) -> None:
    """Wait for ``condition``; fail with the server's log after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; server log:\n{log.read_text()}")
        time.sleep(0.05)


@pytest.fixture
def served(settings, ctx, tmp_path) -> Iterator[Served]:
    server = Served(settings, tmp_path / "server.log")
    yield server
    if server.process is not None and server.process.poll() is None:
        server.kill()


@pytest.fixture
def send(api_key, token_for, owner) -> Callable[[str, bytes, str], str]:
    """``send(base, data, name)``: upload.file as the owner over HTTP; the ticket."""
    token = token_for(owner, doc="write")

    def post(base: str, data: bytes, name: str) -> str:
        values = {"api_key": api_key.key, "auth_token": token}
        values["api_sig"] = md5.signature(values, "upload.file", api_key.secret)
        answer = requests.post(f"{base}/api/upload.file/json", data=values,
                               files={"file": (name, data)}, timeout=60).json()
        return str(answer["ticket"])

    return post


def tickets() -> dict[int, str]:
    """Every ticket's state, read on a fresh connection (the old one may have been cut)."""
    db.close()
    return dict(UploadTicket.select(UploadTicket.id, UploadTicket.state).tuples())


def all_ended() -> bool:
    states = tickets().values()
    return bool(states) and all(state in (DONE, FAILED) for state in states)


def assert_consistent(settings: Any) -> None:
    """Every ticket done with its doc, every media file a doc's and every doc's file there."""
    assert set(tickets().values()) == {DONE}
    assert sorted(t.doc_id for t in UploadTicket.select()) == sorted(Doc.select(Doc.id).scalars())
    assert media_files(settings) == doc_files()
    assert list((Path(settings.data_dir) / "spool").iterdir()) == []  # the dead's and its own


def noisy_jpeg(seed: int) -> bytes:
    """A 1600×1200 JPEG of noise: a few tenths of a second to process, enough to be caught in."""
    out = io.BytesIO()
    Image.effect_noise((1600, 1200), 40 + seed).convert("RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def kill_while_storing(served: Served, settings: Any, send: Callable[[str, bytes, str], str]
                       ) -> None:
    """Upload large files until the server is caught (frozen with SIGSTOP) while it stores one
    whose doc has not committed, then SIGKILL it there."""
    big = b"ARCHIVE\n" + bytes(90 * 1024 * 1024)  # "other" media: stored as it is, 90 MB
    media = Path(settings.data_dir) / "media"
    assert served.process is not None

    def uploader() -> None:
        try:
            send(served.base, big, "big.bin")
            send(served.base, jpeg(), "after.jpg")
        except requests.RequestException:
            pass  # the server died under it: what it committed is in the database

    seen: set[str] = set()
    for _attempt in range(8):
        thread = threading.Thread(target=uploader)
        thread.start()
        until(lambda known=frozenset(seen): bool(originals(media) - known), 20, served.log)
        served.process.send_signal(signal.SIGSTOP)
        seen |= originals(media)
        if media_files(settings) - doc_files():  # caught before the doc committed
            served.kill()
            thread.join(timeout=30)
            return
        served.process.send_signal(signal.SIGCONT)
        thread.join(timeout=30)
    raise AssertionError("never caught the server while it stored a file")


def originals(media: Path) -> set[str]:
    """The names of the big originals under ``media``, whole or being written."""
    return {p.name.lstrip(".").removesuffix(".part") for p in media.rglob("*original.bin*")}


def test_kill_9_while_storing_then_restart_leaves_no_orphan(settings, served, send):
    served.start()
    send(served.base, jpeg(), "before.jpg")
    kill_while_storing(served, settings, send)

    data = Path(settings.data_dir)
    [killed_spool] = (data / "spool").iterdir()  # the killed process's own
    (killed_spool / "part-of-a-request").write_bytes(b"x" * 1000)  # what a killed call leaves
    old, young = data / "incoming" / "old-orphan", data / "incoming" / "young-orphan"
    old.write_bytes(b"x")
    young.write_bytes(b"x")  # as if a request of another process had just moved it there
    an_hour_ago = time.time() - settings.upload_orphan_seconds - 60
    os.utime(old, (an_hour_ago, an_hour_ago))

    served.start()  # the killed ticket is queued again once its lease runs out
    until(all_ended, 25, served.log)
    served.stop()
    assert_consistent(settings)
    assert len(tickets()) >= 2  # the one before and the big one, at least
    assert {doc.original_size for doc in Doc.select().where(Doc.original_ext == "bin")} == {
        90 * 1024 * 1024 + 8}
    assert list((data / "incoming").iterdir()) == [young]


def test_a_database_outage_while_processing_ends_every_ticket_without_restart(settings, served,
                                                                             send):
    served.start()
    sent = [send(served.base, noisy_jpeg(n), f"{n}.jpg") for n in range(8)]
    until(lambda: DONE in tickets().values(), 20, served.log)
    assert list(tickets().values()).count(DONE) < len(sent)  # the rest is still to do
    if TEST_DATABASE_URL:
        outage_postgresql(settings.resolved_database_url, seconds=3)
    else:  # writers wait out the busy timeout (10 s), then fail; readers carry on (WAL)
        outage_sqlite(settings.resolved_database_url, seconds=11)
    until(all_ended, 20, served.log)  # no restart: the worker carried on by itself
    log = served.log.read_text()
    served.stop()
    assert "database unavailable" in log or "lease ran out" in log, log
    assert_consistent(settings)
    assert len(tickets()) == len(sent)
    assert list((Path(settings.data_dir) / "incoming").iterdir()) == []


def outage_sqlite(url: str, *, seconds: float) -> None:
    """Hold the database's write lock from another connection for ``seconds``."""
    locker = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        locker.execute("ROLLBACK")
    finally:
        locker.close()


def outage_postgresql(url: str, *, seconds: float) -> None:
    """Refuse new connections to the run's database and cut the open ones, for ``seconds``."""
    import psycopg2

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(TEST_DATABASE_URL)  # a connection to another database
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE datname = %s", (name,))
            time.sleep(seconds)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
        admin.close()
