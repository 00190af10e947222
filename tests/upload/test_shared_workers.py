"""Upload workers that share a database (issue 11 item 1): three workers take 30 tickets, each
done exactly once; a claim's random token keeps a stale claim from settling; leases follow the
database's clock; ``NOTIFY`` wakes an idle worker long before its poll interval (PostgreSQL); the
periodic check finishes removals a crash cut short. Then three real ``serve.py`` processes on one
database and one data dir (tests/core/test_usage_processes.py's ``servers``)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from api.media.queue import CHANNEL, DONE, QUEUED, WORKING, ClaimLost
from api.media.worker import build_uploads
from api.models.docs import Doc, UploadTicket
from keys.db import db
from keys.notices import Notices
from tests.conftest import TEST_DATABASE_URL
from tests.core.test_usage_processes import servers
from tests.upload.conftest import doc_files, jpeg, media_files, send_upload

WORKERS = 3
UPLOADS = 30
postgres_only = pytest.mark.skipif(not TEST_DATABASE_URL, reason="LISTEN/NOTIFY, now(): PostgreSQL")


def counted(queue: Any, calls: Counter[int]) -> Any:
    """``queue`` with each ``process`` call counted by ticket id."""
    process = queue.process

    def counting(ticket: UploadTicket) -> None:
        calls[ticket.id] += 1
        process(ticket)

    queue.process = counting
    return queue


def assert_each_done_once(tickets: list[int], settings: Any) -> None:
    """Every ticket done after one claim, each with a doc of its own, and no file left over."""
    rows = list(UploadTicket.select().where(UploadTicket.id.in_(tickets)))
    assert {(t.state, t.attempts) for t in rows} == {(DONE, 1)}
    assert len({t.doc_id for t in rows}) == len(tickets) == Doc.select().count()
    assert media_files(settings) == doc_files()
    incoming = Path(settings.data_dir) / "incoming"
    assert not incoming.exists() or not list(incoming.iterdir())


def test_three_workers_do_each_ticket_exactly_once(upload, queue, settings, clock):
    tickets = [int(upload(jpeg(64, 48))["ticket"]) for _ in range(UPLOADS)]
    calls: Counter[int] = Counter()
    workers = [counted(build_uploads(settings, clock=clock), calls) for _ in range(WORKERS)]
    start = threading.Barrier(WORKERS)

    def work(worker: Any) -> int:
        start.wait(timeout=10)
        try:
            return worker.process_pending()
        finally:
            db.close()

    with ThreadPoolExecutor(WORKERS) as pool:
        done = list(pool.map(work, workers))
    assert sum(done) == UPLOADS and calls == Counter(tickets)
    assert_each_done_once(tickets, settings)


def test_a_stale_claim_cannot_settle(upload, queue, settings):
    ticket_id = int(upload(jpeg())["ticket"])
    stale = queue.claim(ticket_id)
    assert stale is not None
    # Queued again and claimed by another worker within the same second: the same lease value.
    UploadTicket.update(state=QUEUED, lease_until=0).where(UploadTicket.id == ticket_id).execute()
    other = build_uploads(settings, clock=queue.clock)
    fresh = other.claim(ticket_id)
    assert fresh is not None and fresh.lease_until == stale.lease_until
    assert fresh.claim_token != stale.claim_token and len(fresh.claim_token) == 16
    assert not queue.settle(stale, state=DONE)
    assert not queue.back_off(stale)
    with pytest.raises(ClaimLost):
        queue.renew(stale, stored_names="[]")
    assert UploadTicket.get_by_id(ticket_id).state == WORKING
    assert other.settle(fresh, state=DONE)


def test_the_check_finishes_removals_a_crash_cut_short(upload, queue, settings):
    ticket_id = int(upload(jpeg())["ticket"])
    queue.process_pending()
    left = "9/9/left_over.jpg"  # a replaced doc's old file, recorded when its ticket was done
    with open(__file__, "rb") as source:
        queue.storage.put(left, source)
    UploadTicket.update(stored_names=json.dumps([left])).where(
        UploadTicket.id == ticket_id).execute()
    assert queue.check() == 0  # what a running worker does now and then, not only at start-up
    assert left not in media_files(settings) and media_files(settings) == doc_files()
    assert UploadTicket.get_by_id(ticket_id).stored_names == ""


@postgres_only
def test_leases_follow_the_database_clock(upload, settings, monkeypatch):
    ticket_id = int(upload(jpeg())["ticket"])
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)  # this host's clock is far off
    ticket = build_uploads(settings).claim(ticket_id)  # the real clock: no clock injected
    assert ticket is not None
    (real,) = db.execute_sql("SELECT EXTRACT(EPOCH FROM now())").fetchone()
    assert abs(ticket.lease_until - settings.upload_lease_seconds - float(real)) < 60
    assert ticket.started_at == 2_000_000_000  # timestamps stay the host's


@postgres_only
def test_a_notify_wakes_an_idle_worker(upload, settings, clock):
    notices = Notices()
    worker = build_uploads(settings.with_(upload_poll_seconds=60), clock=clock, notices=notices)
    notices.start()
    worker.start()
    try:
        listening = f"SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN {CHANNEL}'"
        deadline = time.monotonic() + 10
        while not db.execute_sql(listening).fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        # The worker is idle now: its next poll is a minute away.
        sent = time.monotonic()
        ticket_id = int(upload(jpeg())["ticket"])  # queued by the app's queue, not the worker's
        while UploadTicket.get_by_id(ticket_id).state != DONE and time.monotonic() - sent < 10:
            time.sleep(0.02)
        assert UploadTicket.get_by_id(ticket_id).state == DONE
        assert time.monotonic() - sent < 5  # woken by the NOTIFY, not the 60 s poll
    finally:
        worker.stop()
        notices.stop()


def test_three_processes_on_one_database_and_data_dir(settings, ctx, owner, api_key, token_for,
                                                      tmp_path):
    token = token_for(owner, doc="write")
    photo = jpeg(64, 48)

    def send(job: tuple[str, int]) -> int:
        base, n = job
        return send_upload(base, api_key, token, f"photo-{n}.jpg", photo, timeout=30)

    # A poll interval far longer than the test: new tickets wake the workers (on PostgreSQL
    # every process's through NOTIFY), expired leases are not what moves them.
    with servers(settings, tmp_path, WORKERS, shared_dir=True,
                 API_UPLOAD_POLL_SECONDS="600") as bases:
        with ThreadPoolExecutor(10) as pool:
            tickets = list(pool.map(send, [(bases[n % WORKERS], n) for n in range(UPLOADS)]))
        deadline = time.monotonic() + 60
        while (UploadTicket.select().where(UploadTicket.state != DONE).count()
               and time.monotonic() < deadline):
            time.sleep(0.1)
    assert_each_done_once(tickets, settings.with_(data_dir=str(tmp_path / "shared")))
