"""API_UPLOAD_WORKER off: the process accepts uploads as tickets and never claims one, not even
for an async=0 wait; a process with the worker does (README, "Running several processes")."""

from __future__ import annotations

import pytest

from api.media.worker import build_uploads
from api.models.docs import UploadTicket
from tests.upload.conftest import jpeg


@pytest.fixture
def settings(settings):
    return settings.with_(upload_worker=False, upload_wait_seconds=0.3, upload_poll_seconds=0.05)


def test_uploads_are_queued_and_never_claimed(ctx, upload):
    ctx.uploads.start()  # a no-op without the worker: no thread, no recovery
    try:
        waited = upload(jpeg(), **{"async": 0})  # the bounded wait ends, unclaimed
        queued = upload(jpeg())
    finally:
        ctx.uploads.stop()
    for answer in (waited, queued):
        ticket = UploadTicket.get_by_id(int(answer["ticket"]))
        assert (ticket.state, ticket.attempts, ticket.doc_id) == ("queued", 0, None)
    worker = build_uploads(ctx.settings.with_(upload_worker=True), clock=ctx.clock)
    assert worker.process_pending() == 2
    assert {t.state for t in UploadTicket.select()} == {"done"}


def test_an_async0_wait_ends_when_another_process_worker_is_done(ctx, upload):
    other = build_uploads(ctx.settings.with_(upload_worker=True, upload_wait_seconds=30),
                          clock=ctx.clock)
    ctx.settings = ctx.settings.with_(upload_wait_seconds=30)
    other.start()
    try:
        answer = upload(jpeg(), **{"async": 0})
    finally:
        other.stop()
    ticket = UploadTicket.get_by_id(int(answer["ticket"]))
    assert ticket.state == "done" and ticket.doc_id is not None and ticket.attempts == 1
