"""upload.checkTickets, upload.replace, account.getQuota, and the queue: restarts, claims, races."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from api.app import build_context
from api.media.names import doc_file_names
from api.media.queue import DONE, QUEUED, WORKING
from api.models.docs import Album, Doc, Thumb, UploadTicket
from keys.db import db
from tests.upload.conftest import jpeg


def test_check_tickets_shape(upload, queue, call, token):
    first = upload(jpeg())["ticket"]
    queue.process_pending()
    second = upload(b"\xff\xd8\xff\xe0")  # refused at once: no ticket
    assert second["api"]["code"] == "3"
    waiting = upload(jpeg())["ticket"]
    answer = call("upload.checkTickets", token=token, tickets=f"{first}, {waiting}")
    doc_id = str(Doc.get().id)
    assert answer["tickets"] == {
        "count": "2", "done": "1", "invalid": "0", "left": "1", "eta": "1",
        "ticket": [{"id": first, "done": "1", "invalid": "0", "doc_id": doc_id, "eta": "0"},
                   {"id": waiting, "done": "0", "invalid": "0", "eta": "1"}]}
    xml = call.raw("upload.checkTickets", "xml", token=token, tickets=first).text
    assert f'<ticket id="{first}" done="1" invalid="0" doc_id="{doc_id}" eta="0"/>' in xml


def test_one_ticket_is_still_a_list(upload, call, token):
    ticket = upload(jpeg())["ticket"]
    answer = call("upload.checkTickets", token=token, tickets=ticket)
    assert isinstance(answer["tickets"]["ticket"], list) and len(answer["tickets"]["ticket"]) == 1


def test_unknown_foreign_or_too_many_tickets(upload, call, token, token_for, member):
    ticket = upload(jpeg())["ticket"]
    assert call("upload.checkTickets", token=token, tickets="999")["api"]["code"] == "1"
    assert call("upload.checkTickets", token=token, tickets=f"{ticket},999")["api"]["code"] == "1"
    assert call("upload.checkTickets", token=token, tickets="abc")["api"]["code"] == "1"
    assert call("upload.checkTickets", token=token)["api"]["code"] == "1"
    stranger = token_for(member, doc="write")
    assert call("upload.checkTickets", token=stranger, tickets=ticket)["api"]["code"] == "1"
    many = ",".join(str(n) for n in range(1, 52))
    assert call("upload.checkTickets", token=token, tickets=many)["api"]["code"] == "2"


def _replace(call, token, data, **params):
    return call("upload.replace", token=token, files={"file": ("new.jpg", data)}, **params)


def test_replace_swaps_the_file_and_keeps_the_metadata(upload, queue, call, token, settings):
    upload(jpeg(), title="Keep me", keywords="kept")
    queue.process_pending()
    doc = Doc.get()
    old_files = doc_file_names(doc, list(doc.thumbs))
    new = jpeg(640, 480, color=(0, 90, 0))
    ticket = _replace(call, token, new, doc_id=doc.id)["ticket"]
    assert ticket.endswith(f"-{doc.id}")
    queue.process_pending()
    status = call("upload.checkTickets", token=token, tickets=ticket)["tickets"]["ticket"][0]
    assert (status["id"], status["done"], status["doc_id"]) == (ticket, "1", str(doc.id))
    fresh = Doc.get_by_id(doc.id)
    assert (fresh.title, fresh.width, fresh.height) == ("Keep me", 640, 480)
    assert fresh.secret != doc.secret and fresh.original_secret != doc.original_secret
    media = Path(settings.data_dir) / "media"
    assert not any((media / name).exists() for name in old_files)
    thumbs = list(Thumb.select().where(Thumb.doc == fresh))
    assert all((media / name).exists() for name in doc_file_names(fresh, thumbs))
    assert {t.label for t in thumbs} >= {"75x", "250x", "640"}


def test_replace_codes(upload, queue, call, token, token_for, member, ctx):
    upload(jpeg())
    queue.process_pending()
    doc = Doc.get()
    assert _replace(call, token, jpeg(), doc_id=999)["api"]["code"] == "4"
    assert _replace(call, token, jpeg())["api"]["code"] == "4"
    assert _replace(call, token, jpeg(), doc_id="x")["api"]["code"] == "4"
    stranger = token_for(member, doc="write")
    assert _replace(call, stranger, jpeg(), doc_id=doc.id)["api"]["code"] == "4"
    assert _replace(call, token, b"", doc_id=doc.id)["api"]["code"] == "1"
    video = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
    assert _replace(call, token, video, doc_id=doc.id)["api"]["code"] == "5"
    ctx.settings = ctx.settings.with_(max_photo_bytes=10)
    assert _replace(call, token, jpeg(), doc_id=doc.id)["api"]["code"] == "2"
    ctx.settings = ctx.settings.with_(monthly_upload_bytes=10)
    assert _replace(call, token, b"%PDF-", doc_id=doc.id)["api"]["code"] == "3"


def test_get_quota_shape(upload, queue, call, token, owner):
    data = jpeg()
    upload(data)
    Album.create(owner=owner, title="One")
    quota = call("account.getQuota", token=token)["quota"]
    max_bytes = str(10 * 1024**3)
    assert quota["user_id"] == str(owner.id) and quota["is_pro"] == "0"
    assert quota["upload"]["unlimited"] == "0"
    assert quota["upload"]["max"] == {"bytes": max_bytes, "kb": str(10 * 1024**2), "mb": "10240",
                                      "percent": "100", "seconds": "7200"}
    assert quota["upload"]["used"] == {"bytes": str(len(data)), "kb": str(len(data) // 1024),
                                       "mb": "0", "percent": "1", "seconds": "0"}
    assert quota["upload"]["left"]["bytes"] == str(10 * 1024**3 - len(data))
    assert quota["upload"]["left"]["percent"] == "99"
    assert list(quota["maxfilesize"]) == ["photo", "audio", "video", "other"]
    assert quota["maxfilesize"]["photo"] == {"bytes": "104857600", "kb": "102400", "mb": "100"}
    assert quota["albums"] == {"max": "2048", "created": "1", "left": "2047"}


def test_failed_uploads_do_not_count_against_the_quota(upload, queue, call, token):
    data = jpeg(600, 400)
    upload(data[: len(data) // 2])
    queue.process_pending()
    assert call("account.getQuota", token=token)["quota"]["upload"]["used"]["bytes"] == "0"


def test_a_claim_succeeds_once(upload, queue):
    ticket_id = int(upload(jpeg())["ticket"])
    assert queue.claim(ticket_id) is not None
    assert queue.claim(ticket_id) is None
    assert queue.process_pending() == 0


def test_racing_workers_never_process_a_ticket_twice(upload, queue):
    tickets = {int(upload(jpeg(color=(n, n, n)))["ticket"]) for n in range(6)}
    processed: list[int] = []
    original = queue.process

    def counting(ticket):
        processed.append(ticket.id)
        original(ticket)

    queue.process = counting

    def work() -> None:
        with db.connection_context():
            queue.process_pending()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(processed) == sorted(tickets)
    assert Doc.select().count() == 6
    assert {t.state for t in UploadTicket.select()} == {DONE}


def test_tickets_queued_before_a_restart_are_processed_after_it(upload, queue, settings, clock):
    first, second = (int(upload(jpeg())["ticket"]) for _ in range(2))
    assert queue.claim(first) is not None  # the crash happens while ticket 1 is being worked on
    assert UploadTicket.get_by_id(first).state == WORKING

    restarted = build_context(settings, clock=clock)  # a new process on the same database
    new_queue = restarted.uploads
    assert new_queue.recover() == 0  # the lease still holds: its worker may be alive
    clock.advance(settings.upload_lease_seconds + 1)
    assert new_queue.recover() == 1
    assert UploadTicket.get_by_id(first).state == QUEUED
    assert new_queue.process_pending() == 2
    assert [UploadTicket.get_by_id(t).state for t in (first, second)] == [DONE, DONE]
    assert Doc.select().count() == 2


def test_the_worker_thread_processes_and_stops(upload, queue, call, token):
    queue.start()
    try:
        ticket = upload(jpeg())["ticket"]
        for _ in range(200):
            status = call("upload.checkTickets", token=token, tickets=ticket)["tickets"]
            if status["done"] == "1":
                break
            threading.Event().wait(0.02)
        assert status["done"] == "1"
    finally:
        queue.stop()


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../b", ".hidden", "a//b", "a\\b"])
def test_storage_refuses_unsafe_names(queue, name):
    with pytest.raises(ValueError):
        queue.storage.exists(name)
