"""The upload queue (spec §6): tickets live in the ``upload_tickets`` table, so a restart loses
nothing; a worker thread claims them one at a time with a conditional UPDATE (queued → working), so
no ticket is processed twice, on SQLite or PostgreSQL alike.

``TicketQueue`` accepts, claims and recovers tickets and runs the worker thread; turning a claimed
ticket into a doc is ``UploadQueue.process`` (worker.py). Also the monthly usage the quota reads.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peewee import fn

from api.config import Settings
from api.core.context import Ticket, UploadedFile
from api.media.storage import Storage
from api.models.docs import Doc, UploadTicket
from keys.db import db, is_busy
from keys.models import User

log = logging.getLogger("api.uploads")

QUEUED, WORKING, DONE, FAILED = "queued", "working", "done", "failed"
NO_GEO = "none"  # options["geo"] when the caller sent lat=lng=-999
_WAIT_STEP = 0.05
_SETTLE_ATTEMPTS = 6  # each waits out the busy timeout first: about a minute in all


def ticket_label(ticket: Ticket) -> str:
    """The ticket as clients see it: ``123``, or ``123-456`` for a replacement of doc 456."""
    if ticket.replace_doc_id:
        return f"{ticket.id}-{ticket.replace_doc_id}"
    return str(ticket.id)


def month_start(now: int) -> int:
    """UNIX seconds of the first instant of ``now``'s calendar month (UTC)."""
    moment = datetime.fromtimestamp(now, UTC)
    return int(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def month_usage(user: User, now: int) -> tuple[int, int]:
    """Bytes uploaded (failed tickets excepted) and video seconds posted this month."""
    since = month_start(now)
    used = (UploadTicket
            .select(fn.COALESCE(fn.SUM(UploadTicket.file_size), 0))
            .where(UploadTicket.user == user, UploadTicket.created_at >= since,
                   UploadTicket.state != FAILED)
            .scalar())
    seconds = (Doc
               .select(fn.COALESCE(fn.SUM(Doc.duration), 0))
               .where(Doc.owner == user, Doc.media == "video", Doc.posted_at >= since)
               .scalar())
    return int(used or 0), int(seconds or 0)


class TicketQueue:
    """Accepts uploads as tickets, claims them one at a time, and runs the background worker
    (``start``/``stop``) that ``serve.py`` runs. Tests drive it with ``process_pending``."""

    def __init__(self, settings: Settings, storage: Storage, *,
                 clock: Callable[[], float] = time.time,
                 new_secret: Callable[[int], str] = secrets.token_hex) -> None:
        self.settings = settings
        self.storage = storage
        self.clock = clock
        self.new_secret = new_secret
        self.incoming = Path(settings.data_dir) / "incoming"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._accepting = threading.Lock()

    def now(self) -> int:
        """The injected clock in whole seconds."""
        return int(self.clock())

    # -- accepting ------------------------------------------------------------------------------

    def enqueue(self, *, user: User, api_key: str, upload: UploadedFile, options: dict[str, Any],
                replace_doc: Doc | None = None,
                admit: Callable[[], None] = lambda: None) -> UploadTicket:
        """Take the spooled file over and queue it; the ticket is committed before this returns.

        ``admit`` (the monthly quota check) runs under the queue's lock right before the insert,
        so parallel uploads of one server cannot all squeeze under the limit together.
        """
        self.incoming.mkdir(parents=True, exist_ok=True)
        kept = self.incoming / secrets.token_hex(12)
        with self._accepting:
            admit()
            shutil.move(upload.path, kept)  # the transport deletes what is left at its path
            try:
                ticket = UploadTicket.create(user=user, api_key=api_key, replace_doc=replace_doc,
                                             params=json.dumps(options), file_path=str(kept),
                                             file_size=upload.size,
                                             filename=upload.filename[:255],
                                             created_at=self.now())
            except BaseException:
                kept.unlink(missing_ok=True)
                raise
        self._wake.set()
        return ticket

    def wait(self, ticket_id: int, timeout: float) -> None:
        """Finish ``ticket_id`` now if nobody claimed it, else wait (bounded) for whoever did.

        The ticket is stored before this runs, so a busy database only ends the wait: the caller
        answers with the ticket as usual and the worker finishes it later (a 503 here would make
        a client upload the same file twice).
        """
        try:
            ticket = self.claim(ticket_id)
            if ticket is not None:
                self.process(ticket)
                return
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                state = (UploadTicket.select(UploadTicket.state)
                         .where(UploadTicket.id == ticket_id).scalar())
                if state not in (QUEUED, WORKING):
                    return
                time.sleep(_WAIT_STEP)
        except Exception as error:
            if not is_busy(error):
                raise
            log.warning("waiting for upload ticket %s ended, database busy", ticket_id)

    def settle(self, ticket_id: int, **fields: Any) -> None:
        """Write a ticket's new state, retrying while the database is busy: a ticket left
        ``working`` would never be picked up again until a restart."""
        for attempt in range(_SETTLE_ATTEMPTS):
            try:
                UploadTicket.update(**fields).where(UploadTicket.id == ticket_id).execute()
                return
            except Exception as error:
                if not is_busy(error) or attempt == _SETTLE_ATTEMPTS - 1:
                    raise
                time.sleep(_WAIT_STEP * 2 ** attempt)

    # -- the queue ------------------------------------------------------------------------------

    def claim(self, ticket_id: int) -> UploadTicket | None:
        """Move one ticket from queued to working; only one claimer ever succeeds."""
        claimed = (UploadTicket
                   .update(state=WORKING, started_at=self.now())
                   .where(UploadTicket.id == ticket_id, UploadTicket.state == QUEUED)
                   .execute())
        return UploadTicket.get_by_id(ticket_id) if claimed == 1 else None

    def run_once(self) -> bool:
        """Claim and process the oldest queued ticket; False when there was none to claim."""
        # Read the candidates fully first: an open SELECT would pin a stale SQLite snapshot.
        candidates = list(UploadTicket
                          .select(UploadTicket.id)
                          .where(UploadTicket.state == QUEUED)
                          .order_by(UploadTicket.id)
                          .limit(10)
                          .scalars())
        for ticket_id in candidates:
            ticket = self.claim(ticket_id)
            if ticket is not None:
                self.process(ticket)
                return True
        return False

    def process_pending(self) -> int:
        """Process queued tickets until none is left; the number processed."""
        count = 0
        while self.run_once():
            count += 1
        return count

    def recover(self) -> int:
        """Requeue tickets a crash left half-done and drop spooled files no ticket waits for.

        Assumes one worker per database: at start-up no other process is working on tickets.
        """
        requeued = (UploadTicket
                    .update(state=QUEUED, started_at=0)
                    .where(UploadTicket.state == WORKING)
                    .execute())
        if self.incoming.is_dir():
            waiting = set(UploadTicket.select(UploadTicket.file_path)
                          .where(UploadTicket.state == QUEUED).scalars())
            for path in self.incoming.iterdir():
                if str(path) not in waiting:
                    path.unlink(missing_ok=True)
        return requeued

    # -- the worker thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Recover from a crash, then process tickets in a daemon thread until ``stop``."""
        if self._thread is not None:
            return
        with db.connection_context():
            self.recover()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="upload-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Let the current ticket finish and end the thread."""
        if self._thread is None:
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=60)
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                with db.connection_context():
                    busy = self.run_once()
            except Exception:
                log.exception("upload worker pass failed")
                busy = False
            if not busy:
                self._wake.wait(self.settings.upload_poll_seconds)

    def process(self, ticket: UploadTicket) -> None:
        """Turn one claimed ticket into a doc; ``UploadQueue`` (worker.py) does it."""
        raise NotImplementedError
