"""Leases and recovery of the upload queue, driven by hand with the fake clock (issue 10 item 6):
names recorded before files, a crash in the middle of storing, a worker whose lease ran out,
start-up recovery that leaves live workers alone, and the age-bound sweep (the rest of recovery:
test_recovery_bounds.py)."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from api.app import build_context
from api.media.names import doc_file_names
from api.media.queue import DONE, QUEUED, WORKING
from api.media.storage import LocalStorage
from api.models.docs import Doc, UploadTicket
from keys.db import db
from tests.upload.conftest import doc_files, jpeg, media_files


class Killed(BaseException):
    """A kill -9 stand-in: no ``except Exception`` sees it, so no cleanup runs."""


class WatchedStorage:
    """The real storage, with a hook that runs before each ``put``."""

    def __init__(self, inner: Any, before_put: Any) -> None:
        self.inner = inner
        self.before_put = before_put

    def put(self, name: str, source: BinaryIO) -> None:
        self.before_put(name)
        self.inner.put(name, source)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


def killed_at_put(number: int) -> Any:
    """A ``WatchedStorage`` hook that kills the worker as it starts its ``number``-th file."""
    puts = 0

    def hook(name: str) -> None:
        nonlocal puts
        puts += 1
        if puts == number:
            raise Killed

    return hook


def test_names_are_committed_before_any_file_is_stored(upload, queue):
    ticket_id = int(upload(jpeg(800, 600))["ticket"])
    seen: list[str] = []

    def check(name: str) -> None:
        assert not db.in_transaction()  # stored outside any transaction: the names committed
        recorded = json.loads(UploadTicket.get_by_id(ticket_id).stored_names)
        assert name in recorded
        seen.append(name)

    queue.storage = WatchedStorage(queue.storage, check)
    assert queue.process_pending() == 1
    doc = Doc.get()
    assert seen == doc_file_names(doc, list(doc.thumbs))
    assert UploadTicket.get_by_id(ticket_id).stored_names == ""  # done: no file left to remove


def test_a_crash_while_storing_leaves_nothing_once_recovered(upload, queue, settings, clock):
    ticket_id = int(upload(jpeg(800, 600))["ticket"])
    upload_path = queue.incoming.path(UploadTicket.get_by_id(ticket_id).file_path)
    queue.storage = WatchedStorage(queue.storage, killed_at_put(3))
    try:
        queue.process_pending()
    except Killed:
        pass
    ticket = UploadTicket.get_by_id(ticket_id)
    assert ticket.state == WORKING and Doc.select().count() == 0
    assert len(media_files(settings)) == 2  # orphans: the original and one thumbnail
    assert upload_path.exists()

    restarted = build_context(settings, clock=clock).uploads
    assert restarted.recover() == 0  # the lease still holds: the worker may be alive
    clock.advance(settings.upload_lease_seconds + 1)
    assert restarted.recover() == 1
    assert media_files(settings) == set()  # the recorded names are removed with the requeue
    assert restarted.process_pending() == 1
    assert UploadTicket.get_by_id(ticket_id).state == DONE
    assert media_files(settings) == doc_files() != set()
    assert not upload_path.exists()


def test_a_worker_whose_lease_ran_out_abandons_its_ticket(upload, queue, settings, clock):
    ticket_id = int(upload(jpeg(800, 600))["ticket"])
    other = build_context(settings, clock=clock).uploads  # another worker on the database
    ticket = queue.claim(ticket_id)
    requeued: list[int] = []

    def stall_then_lose(name: str) -> None:
        if not requeued:  # the first worker stalls past its lease; the other one requeues
            clock.advance(settings.upload_lease_seconds + 1)
            requeued.append(other.requeue_expired())

    queue.storage = WatchedStorage(queue.storage, stall_then_lose)
    queue.process(ticket)  # gives up when it finds its lease taken
    assert requeued == [1]
    assert UploadTicket.get_by_id(ticket_id).state == QUEUED
    assert media_files(settings) == set() and Doc.select().count() == 0
    assert queue.incoming.path(ticket.file_path).exists()  # the upload is the next claimer's

    assert other.process_pending() == 1
    assert UploadTicket.get_by_id(ticket_id).state == DONE and Doc.select().count() == 1
    assert media_files(settings) == doc_files()


def test_the_final_update_needs_the_claim(upload, queue, settings):
    ticket_id = int(upload(jpeg())["ticket"])

    def taken_over(name: str) -> None:  # requeued and claimed by another worker meanwhile,
        # under the same lease (computed in the same second): only the claim token differs
        UploadTicket.update(claim_token="another-claim").where(
            UploadTicket.id == ticket_id).execute()

    queue.storage = WatchedStorage(queue.storage, taken_over)
    assert queue.process_pending() == 1
    assert Doc.select().count() == 0 and media_files(settings) == set()
    assert UploadTicket.get_by_id(ticket_id).state == WORKING  # still the other holder's


def test_leases_are_renewed_while_working(upload, queue, settings, clock):
    ticket_id = int(upload(jpeg(800, 600))["ticket"])

    def slow(name: str) -> None:  # each file takes half a lease; the lease never runs out
        clock.advance(settings.upload_lease_seconds / 2)
        assert UploadTicket.get_by_id(ticket_id).lease_until > clock()

    queue.storage = WatchedStorage(queue.storage, slow)
    assert queue.process_pending() == 1
    assert UploadTicket.get_by_id(ticket_id).state == DONE


def test_start_up_requeues_only_expired_leases(upload, queue, clock):
    live, legacy = (int(upload(jpeg())["ticket"]) for _ in range(2))
    queue.claim(live)  # another process works on it right now
    UploadTicket.update(state=WORKING, lease_until=0).where(UploadTicket.id == legacy).execute()
    assert queue.recover() == 1
    assert [UploadTicket.get_by_id(t).state for t in (live, legacy)] == [WORKING, QUEUED]


def test_recovery_sweeps_only_old_orphans(upload, queue, settings):
    waiting = queue.incoming.path(UploadTicket.get_by_id(int(upload(jpeg())["ticket"])).file_path)
    data = Path(settings.data_dir)
    old_orphan, young_orphan = data / "incoming" / "old", data / "incoming" / "young"
    old_orphan.write_bytes(b"x")
    young_orphan.write_bytes(b"x")  # a request just moved it here; its ticket is not committed yet
    an_hour_ago = time.time() - settings.upload_orphan_seconds - 60
    for path in (old_orphan, waiting):
        os.utime(path, (an_hour_ago, an_hour_ago))
    queue.recover()
    assert sorted((data / "incoming").iterdir()) == sorted([young_orphan, waiting])


def test_deleting_a_name_removes_a_write_a_crash_cut_short(tmp_path):
    storage = LocalStorage(tmp_path)
    partial = tmp_path / "12" / ".34.part"
    partial.parent.mkdir()
    partial.write_bytes(b"half")
    storage.put("12/34", io.BytesIO(b"whole"))
    assert not partial.exists() and storage.exists("12/34")
    partial.write_bytes(b"half")
    storage.delete("12/34")
    assert list((tmp_path / "12").iterdir()) == []


def test_tickets_name_their_upload_relative_to_the_data_dir(upload, queue, settings):
    """A ticket stores ``incoming/<name>``, which every host sharing the data dir can open; rows
    from before, holding the path itself, are still processed and swept by it."""
    new, legacy = (int(upload(jpeg())["ticket"]) for _ in range(2))
    ref = UploadTicket.get_by_id(new).file_path
    assert ref.startswith("incoming/") and not Path(ref).is_absolute()
    old_path = queue.incoming.path(UploadTicket.get_by_id(legacy).file_path)
    UploadTicket.update(file_path=str(old_path)).where(UploadTicket.id == legacy).execute()
    an_hour_ago = time.time() - settings.upload_orphan_seconds - 60
    os.utime(old_path, (an_hour_ago, an_hour_ago))
    assert queue.sweep_incoming() == 0  # queued under its old name: not an orphan
    assert old_path.exists()
    assert queue.process_pending() == 2
    assert {t.state for t in UploadTicket.select()} == {DONE}
    assert list((Path(settings.data_dir) / "incoming").iterdir()) == []
