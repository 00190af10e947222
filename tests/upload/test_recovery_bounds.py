"""What a review of the upload queue's recovery found (issue 10 item 6), driven by hand with the
fake clock: a replacement writes only the file fields of a freshly read doc, overlapping
replacements leak nothing, a kill -9 right after the final commit leaves no stale file or upload,
a ticket is tried a bounded number of times, a full disk queues it again, and each process has a
spool of its own that another process's start-up leaves alone."""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from api.app import build_context
from api.media.queue import DONE, FAILED, QUEUED
from api.models.docs import Doc, UploadTicket
from tests.upload.conftest import doc_files, jpeg, media_files
from tests.upload.test_leases import Killed, WatchedStorage


@pytest.fixture
def replace(call, token) -> Any:
    """``replace(doc_id, data)``: upload.replace as the owner; its ticket id."""

    def send(doc_id: int, data: bytes) -> int:
        answer = call("upload.replace", token=token, doc_id=doc_id,
                      files={"file": ("new.jpg", data)})
        return int(answer["ticket"].split("-")[0])

    return send


@pytest.fixture
def photo(upload, queue) -> Doc:
    """A public photo of the owner's, processed."""
    upload(jpeg(), title="first", is_public=1)
    queue.process_pending()
    return Doc.get()


def test_a_replacement_keeps_edits_made_while_it_runs(photo, replace, queue, call, token):
    replace(photo.id, jpeg(640, 480))
    edited: list[Any] = []

    def edit(name: str) -> None:  # the owner makes the doc private while the file is replaced
        if not edited:
            edited.append(call("doc.setPerms", token=token, doc_id=photo.id, is_public=0))
            edited.append(call("doc.set", token=token, doc_id=photo.id, title="renamed"))

    queue.storage = WatchedStorage(queue.storage, edit)
    assert queue.process_pending() == 1
    fresh = Doc.get_by_id(photo.id)
    assert (fresh.title, bool(fresh.is_public), fresh.width) == ("renamed", False, 640)


def test_overlapping_replacements_leak_no_file(photo, replace, queue, settings, clock):
    first = replace(photo.id, jpeg(640, 480))
    replace(photo.id, jpeg(500, 400))
    other = build_context(settings, clock=clock).uploads
    interleaved: list[int] = []

    def meanwhile(name: str) -> None:  # while this worker stores, another does the second wholly
        if not interleaved:
            interleaved.append(other.process_pending())

    queue.storage = WatchedStorage(queue.storage, meanwhile)
    claimed = queue.claim(first)
    assert claimed is not None
    queue.process(claimed)
    assert interleaved == [1] and {t.state for t in UploadTicket.select()} == {DONE}
    assert media_files(settings) == doc_files()
    assert Doc.get_by_id(photo.id).width == 640  # the later commit wins, whole


def test_a_kill_after_a_replacements_commit_leaks_no_old_file(photo, replace, queue, settings,
                                                               clock):
    ticket_id = replace(photo.id, jpeg(640, 480, color=(0, 90, 0)))
    old = doc_files()
    real = queue.discard

    def killed(names: list[str]) -> None:
        if names:  # the stale files, right after the commit
            raise Killed
        real(names)

    queue.discard = killed  # type: ignore[method-assign]
    with pytest.raises(Killed):
        queue.process_pending()
    assert old <= media_files(settings)  # the old files outlived the process
    upload_path = queue.incoming.path(UploadTicket.get_by_id(ticket_id).file_path)
    restarted = build_context(settings, clock=clock).uploads
    restarted.recover()
    assert media_files(settings) == doc_files() and not old & doc_files()
    assert UploadTicket.get_by_id(ticket_id).stored_names == ""
    assert not upload_path.exists()  # named by a done ticket: swept at any age


def test_a_ticket_is_tried_a_bounded_number_of_times(upload, queue, settings, clock):
    ticket_id = int(upload(jpeg(800, 600))["ticket"])
    upload_path = queue.incoming.path(UploadTicket.get_by_id(ticket_id).file_path)
    other = build_context(settings, clock=clock).uploads

    def slow(name: str) -> None:  # storing the original always outlasts the lease
        if "original" in name:
            clock.advance(settings.upload_lease_seconds + 1)
            other.check()  # another worker sees the lease expired and queues the ticket again

    queue.storage = WatchedStorage(queue.storage, slow)
    for _ in range(settings.upload_max_attempts + 2):
        queue.run_once()
    ticket = UploadTicket.get_by_id(ticket_id)
    assert (ticket.state, ticket.error, ticket.attempts) == (
        FAILED, "too many attempts", settings.upload_max_attempts)
    assert media_files(settings) == set() and Doc.select().count() == 0
    assert not upload_path.exists()


def test_a_full_disk_queues_the_ticket_again_later(upload, queue, settings, clock):
    ticket_id = int(upload(jpeg(800, 600))["ticket"])
    upload_path = queue.incoming.path(UploadTicket.get_by_id(ticket_id).file_path)
    full = [True]

    def put(name: str) -> None:
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")

    queue.storage = WatchedStorage(queue.storage, put)
    assert queue.process_pending() == 1
    ticket = UploadTicket.get_by_id(ticket_id)
    assert ticket.state == QUEUED and upload_path.exists()
    assert queue.process_pending() == 0  # backed off: not claimed again at once
    clock.advance(ticket.lease_until - clock() + 1)
    full[0] = False
    assert queue.process_pending() == 1
    assert UploadTicket.get_by_id(ticket_id).state == DONE
    assert media_files(settings) == doc_files() != set()


def test_a_disk_full_for_longer_than_the_attempts_bound_loses_no_upload(upload, queue, settings,
                                                                          clock):
    """An outage is not the upload's fault: each back-off gives the attempt back, so a disk
    full for many leases fails nothing (a first version failed, and deleted, such uploads after
    three)."""
    ticket_id = int(upload(jpeg(800, 600))["ticket"])
    full = [True]

    def put(name: str) -> None:
        if full[0]:
            raise OSError(errno.ENOSPC, "No space left on device")

    queue.storage = WatchedStorage(queue.storage, put)
    for _ in range(settings.upload_max_attempts + 3):
        assert queue.process_pending() == 1
        ticket = UploadTicket.get_by_id(ticket_id)
        assert ticket.state == QUEUED and ticket.attempts == 0
        clock.advance(ticket.lease_until - clock() + 1)
    full[0] = False
    assert queue.process_pending() == 1
    assert UploadTicket.get_by_id(ticket_id).state == DONE


def test_a_kill_after_the_final_commit_leaves_no_upload(upload, queue, settings, clock):
    ticket_id = int(upload(jpeg())["ticket"])
    upload_path = queue.incoming.path(UploadTicket.get_by_id(ticket_id).file_path)
    real = queue.discard
    calls: list[list[str]] = []

    def killed(names: list[str]) -> None:
        calls.append(names)
        if len(calls) == 2:  # the claim's, then the one right after the commit
            raise Killed
        real(names)

    queue.discard = killed  # type: ignore[method-assign]
    with pytest.raises(Killed):
        queue.process_pending()
    assert UploadTicket.get_by_id(ticket_id).state == DONE and upload_path.exists()
    build_context(settings, clock=clock).uploads.recover()
    assert not upload_path.exists()


def test_start_up_leaves_the_spools_of_live_processes_alone(queue, settings, clock):
    spool = Path(settings.data_dir) / "spool"
    mine = queue.own_spool()
    (mine / "being-received").write_bytes(b"x")
    dead = spool / f"{socket.gethostname()}-{_dead_pid()}-0a1b2c3d"
    elsewhere_old, elsewhere_young = spool / "otherhost-12-aaaa", spool / "otherhost-13-bbbb"
    for directory in (dead, elsewhere_old, elsewhere_young):
        directory.mkdir(parents=True)
        (directory / "part").write_bytes(b"x")
    long_ago = time.time() - settings.body_timeout - 3600
    for path in (elsewhere_old / "part", elsewhere_old):
        os.utime(path, (long_ago, long_ago))

    starting = build_context(settings, clock=clock).uploads  # another process starts
    starting.recover()
    assert sorted(spool.iterdir()) == sorted([mine, elsewhere_young, starting.spool])
    assert (mine / "being-received").exists()


def _dead_pid() -> int:
    """The id of a process of this host that has ended."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_a_doc_deleted_while_its_file_is_replaced_leaves_no_file(photo, replace, queue, call,
                                                                  token_for, owner, settings):
    replace(photo.id, jpeg(640, 480))
    deleted: list[Any] = []

    def delete(name: str) -> None:
        if not deleted:
            deleted.append(call("doc.delete", token=token_for(owner, doc="delete"),
                                doc_id=photo.id))

    queue.storage = WatchedStorage(queue.storage, delete)
    queue.process_pending()
    assert deleted[0]["api"]["status"] == "ok" and Doc.select().count() == 0
    assert media_files(settings) == set()


def test_a_ticket_waiting_for_a_decoding_slot_keeps_its_lease(upload, queue, settings, clock):
    """Both slots busy (long decodes ahead): the claimed ticket renews its lease while it waits,
    so the claim does not expire and spend its attempts; once a slot frees it is processed."""
    queue.settings = settings.with_(upload_lease_seconds=3)  # waits 1 s per renewal
    ticket_id = int(upload(jpeg())["ticket"])
    ticket = queue.claim(ticket_id)
    first_lease = ticket.lease_until
    queue._slots.acquire()
    queue._slots.acquire()
    clock.advance(2)  # two thirds of the lease gone: the next renewal extends it
    done = threading.Thread(target=queue.process, args=(ticket,))
    done.start()
    time.sleep(1.5)
    renewed = UploadTicket.get_by_id(ticket_id)
    assert renewed.state == "working" and renewed.lease_until == first_lease + 2
    queue._slots.release()
    queue._slots.release()
    done.join(timeout=30)
    assert UploadTicket.get_by_id(ticket_id).state == DONE
