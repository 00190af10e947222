"""The upload queue (spec §6): tickets live in the ``upload_tickets`` table, so a restart loses
nothing; a worker claims one with a conditional UPDATE (queued → working) under a lease it renews
while it works, so no ticket is processed twice and one whose worker died is queued again, with
any number of workers on one database, SQLite or PostgreSQL alike (docs/uploads.md, "Leases").

``TicketQueue`` accepts, claims and recovers tickets and runs the worker thread; turning a claimed
ticket into a doc is ``UploadQueue.process`` (worker.py). Also each process's spool of request
files, and the monthly usage the quota reads.

Leases are measured by the database's clock (``keys.db.database_time``), so hosts whose clocks
drift apart still agree on when one ran out; a claim's random token, not its lease, tells the
claims of one ticket apart. Tests inject a clock, which then drives the leases too. On PostgreSQL
a worker picks the next ticket with ``FOR UPDATE SKIP LOCKED`` (N workers do not all race for the
oldest row) and is woken by ``NOTIFY`` when a ticket is queued (``keys.notices``).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peewee import Expression, InterfaceError, OperationalError, fn

from api.config import Settings
from api.core.context import Ticket, UploadedFile
from api.media.incoming import build_incoming
from api.media.storage import PRIVATE_DIR, Storage
from api.models.docs import Doc, Media, UploadTicket
from keys.db import as_tuples, database_time, db, is_busy, serialised
from keys.models import User
from keys.notices import Notices, notify

log = logging.getLogger("api.uploads")

QUEUED, WORKING, DONE, FAILED = "queued", "working", "done", "failed"
NO_GEO = "none"  # options["geo"] when the caller sent lat=lng=-999
_WAIT_STEP = 0.05
_SETTLE_ATTEMPTS = 6  # each waits out the busy timeout first: about a minute in all
SPOOL = "spool"  # data_dir's folder of request files (one dir per process)
_SWEEP_BATCH = 500  # old files looked up per sweep: one bounded IN list, the rest next time
_SPOOL_MARGIN = 600  # seconds past body_timeout after which another process's spool is abandoned
_DISK_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})  # the disk's fault
TOO_MANY_ATTEMPTS = "too many attempts"  # the error of a ticket claimed upload_max_attempts times
CHANNEL = "api_upload_tickets"  # NOTIFY'd with a new ticket's id (PostgreSQL)
_CLAIM_TOKEN_BYTES = 8  # 16 hex digits
_CANDIDATES = 10  # tickets tried per pass when the first ones cannot be claimed


class ClaimLost(Exception):
    """The ticket is no longer this worker's: its lease ran out and it was queued again."""


def database_failed(error: BaseException) -> bool:
    """Whether ``error`` came from the database (busy, unreachable, connection cut), not from the
    file: such a ticket is tried again later, never marked failed."""
    return is_busy(error) or isinstance(error, OperationalError | InterfaceError)


def disk_failed(error: BaseException) -> bool:
    """Whether ``error`` is a full or failing disk (ENOSPC, EDQUOT, EIO), not the file's fault:
    such a ticket is tried again later, like after a database failure."""
    return isinstance(error, OSError) and error.errno in _DISK_FAILURES


def held(ticket: UploadTicket) -> Expression:
    """The claim ``ticket`` carries: still working, under the token this worker's claim wrote."""
    return ((UploadTicket.id == ticket.id) & (UploadTicket.state == WORKING)
            & (UploadTicket.claim_token == ticket.claim_token))


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
    """Bytes uploaded this month (failed tickets excepted) with the web renditions made of them
    (the current ones of each doc uploaded or replaced this month: a 20 KB file may make megabytes
    of MP4), and video seconds posted this month."""
    since = month_start(now)
    this_month = (UploadTicket.user == user) & (UploadTicket.created_at >= since)
    used = (UploadTicket
            .select(fn.COALESCE(fn.SUM(UploadTicket.file_size), 0))
            .where(this_month, UploadTicket.state != FAILED)
            .scalar())
    made = (Media
            .select(fn.COALESCE(fn.SUM(Media.size), 0))
            .where(Media.doc.in_(UploadTicket.select(UploadTicket.doc)
                                 .where(this_month, UploadTicket.state == DONE)))
            .scalar())
    seconds = (Doc
               .select(fn.COALESCE(fn.SUM(Doc.duration), 0))
               .where(Doc.owner == user, Doc.media == "video", Doc.posted_at >= since)
               .scalar())
    return int(used or 0) + int(made or 0), int(seconds or 0)


class TicketQueue:
    """Accepts uploads as tickets, claims them one at a time, and runs the background worker
    (``start``/``stop``) that ``serve.py`` runs. Tests drive it with ``process_pending``.

    ``clock`` None is the real time: the wall clock for the tickets' timestamps, the database's
    for leases and back-offs; an injected clock (the tests' fake one) drives both. ``notices``
    (PostgreSQL) wakes the worker when any process queues a ticket."""

    def __init__(self, settings: Settings, storage: Storage, *,
                 clock: Callable[[], float] | None = None,
                 new_secret: Callable[[int], str] = secrets.token_hex,
                 notices: Notices | None = None) -> None:
        self.settings = settings
        self.storage = storage
        self.clock = clock or time.time
        self.lease_clock = clock or database_time
        self.new_secret = new_secret
        # Where uploads wait for a worker: data_dir/incoming, or the bucket with S3 storage.
        self.incoming = build_incoming(settings)
        # Request file parts being received: a dir per process, so no start-up removes another
        # process's files in flight (``sweep_spools``).
        self.spools = Path(settings.data_dir) / SPOOL
        self.spool = self.spools / f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiting = threading.BoundedSemaphore(settings.max_sync_upload_waits)
        if notices is not None and settings.upload_worker:
            notices.subscribe(CHANNEL, lambda _ticket: self._wake.set())

    def now(self) -> int:
        """The clock in whole seconds (the tickets' timestamps)."""
        return int(self.clock())

    def lease_now(self) -> int:
        """The clock leases are measured by, in whole seconds: the database's."""
        return int(self.lease_clock())

    def own_spool(self) -> Path:
        """This process's spool dir, made again if it is missing (a request's file parts go
        there; ``api/app.py`` asks for it with each request)."""
        self.spool.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        return self.spool

    # -- accepting ------------------------------------------------------------------------------

    def enqueue(self, *, user: User, api_key: str, upload: UploadedFile, options: dict[str, Any],
                replace_doc: Doc | None = None,
                admit: Callable[[], None] = lambda: None) -> UploadTicket:
        """Take the spooled file over and queue it; the ticket is committed before this returns.

        ``admit`` (the monthly quota check) and the insert are one transaction holding the
        member's ``quota:<id>`` lock (``serialised``), so parallel uploads, in any number of
        processes, cannot all squeeze under the limit together. The same transaction notifies
        every worker on the database (PostgreSQL), delivered when it commits.
        """
        # Kept before the lock is taken: with object storage that is an upload, which must not
        # hold the member's lock. The transport deletes what is left at the spooled path.
        kept = self.incoming.keep(upload.path)
        try:
            with serialised(f"quota:{user.id}"):
                admit()
                ticket = UploadTicket.create(user=user, api_key=api_key, replace_doc=replace_doc,
                                             params=json.dumps(options), file_path=kept,
                                             file_size=upload.size,
                                             filename=upload.filename[:255],
                                             created_at=self.now())
                notify(CHANNEL, str(ticket.id))
        except BaseException:  # refused, or the ticket never committed
            self.incoming.remove(kept)
            raise
        self._wake.set()
        return ticket

    def wait(self, ticket_id: int, timeout: float, *, process: bool = True) -> None:
        """Finish ``ticket_id`` now if nobody claimed it (and ``process``), else wait (bounded)
        for whoever did. A video or a sound is not processed here (``process`` False): its
        transcoding may take many times ``timeout``, so the worker does it and the request
        answers once the ticket is done or ``timeout`` ran out, whichever comes first (the client
        then polls upload.checkTickets, as after async=1).

        At most ``max_sync_upload_waits`` requests do so at once; later ones return at once and
        answer with the ticket as async=1 would, so uploads never hold every request thread.
        The ticket is stored before this runs, so a busy database only ends the wait: the caller
        answers with the ticket as usual and the worker finishes it later (a 503 here would make
        a client upload the same file twice).
        """
        if not self._waiting.acquire(blocking=False):
            return
        try:
            self._wait(ticket_id, timeout, process)
        finally:
            self._waiting.release()

    def _wait(self, ticket_id: int, timeout: float, process: bool) -> None:
        try:
            # A process without the worker (API_UPLOAD_WORKER off) leaves the claim to one with it.
            ticket = (self.claim(ticket_id) if process and self.settings.upload_worker
                      else None)
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

    def settle(self, ticket: UploadTicket, **fields: Any) -> bool:
        """Write a claimed ticket's new state if the claim still holds, retrying while the
        database is busy; whether it was written. When it was not, the ticket stays as it is:
        its lease runs out and it is queued again (``requeue_expired``)."""
        attempt = 0
        while True:
            try:
                return UploadTicket.update(**fields).where(held(ticket)).execute() == 1
            except Exception as error:
                if not is_busy(error) or attempt == _SETTLE_ATTEMPTS - 1:
                    log.warning("upload ticket %s left to its lease: %r", ticket.id, error)
                    return False
                time.sleep(_WAIT_STEP * 2 ** attempt)
                attempt += 1

    def renew(self, ticket: UploadTicket, **fields: Any) -> None:
        """Extend the claim's lease once a third of it has passed (at once when ``fields`` are to
        be written with it); ClaimLost when the ticket is no longer ours."""
        now, lease = self.lease_now(), self.settings.upload_lease_seconds
        if not fields and ticket.lease_until - now > lease * 2 // 3:
            return
        renewed = UploadTicket.update(lease_until=now + lease, **fields).where(held(ticket))
        if renewed.execute() != 1:
            raise ClaimLost(f"upload ticket {ticket.id} was queued again")
        for name, value in {"lease_until": now + lease, **fields}.items():
            setattr(ticket, name, value)

    def back_off(self, ticket: UploadTicket) -> bool:
        """Queue a claimed ticket again after a database or disk failure, not to be claimed for
        a lease's time; whether it was written (see ``settle``). The attempt is given back: an
        outage or a full disk is not the upload's fault, and only crashes and lost leases may
        use up ``upload_max_attempts`` (a ticket whose upload is kept is retried until the
        failure clears)."""
        return self.settle(ticket, state=QUEUED, started_at=0, claim_token="",
                           lease_until=self.lease_now() + self.settings.upload_lease_seconds,
                           attempts=ticket.attempts - 1)

    def discard(self, names: list[str]) -> None:
        """Remove stored files nothing refers to (a missing one is fine)."""
        for name in names:
            self.storage.delete(name)

    def tidy(self, ticket_id: int, recorded: str, file_path: str) -> None:
        """Once a ticket's done or failed has committed: remove the files its ``stored_names``
        lists (``recorded``: none a doc refers to), then its upload, then empty the list. A crash
        in between leaves them to the next ``check`` (``finish_removals``), of any process."""
        self.discard(stored_names(recorded))
        self.incoming.remove(file_path)
        if not recorded:
            return
        try:
            (UploadTicket.update(stored_names="")
             .where(UploadTicket.id == ticket_id, UploadTicket.state.in_((DONE, FAILED)))
             .execute())
        except Exception as error:
            if not database_failed(error):
                raise
            log.warning("upload ticket %s: its removed files stay listed: %r", ticket_id, error)

    # -- the queue ------------------------------------------------------------------------------

    def claim(self, ticket_id: int) -> UploadTicket | None:
        """Move one ticket from queued to working under a fresh lease and a new claim token,
        counting the attempt; only one claimer ever succeeds. Files an earlier attempt recorded
        are removed first: they belong to no doc (a done ticket is never queued again), and a
        crash may have cut their removal short. A ticket backing off is not claimed yet; one
        claimed ``upload_max_attempts`` times already is marked failed instead."""
        return self._claimed(ticket_id, self._take(ticket_id, self.lease_now()))

    def _take(self, ticket_id: int, now: int) -> bool:
        """The claim's conditional UPDATE (the guard, whoever picked the ticket); whether it
        took the ticket."""
        return (UploadTicket
                .update(state=WORKING, started_at=self.now(),
                        lease_until=now + self.settings.upload_lease_seconds,
                        claim_token=secrets.token_hex(_CLAIM_TOKEN_BYTES),
                        attempts=UploadTicket.attempts + 1)
                .where(UploadTicket.id == ticket_id, UploadTicket.state == QUEUED,
                       UploadTicket.lease_until <= now,
                       UploadTicket.attempts < self.settings.upload_max_attempts)
                .execute()) == 1

    def _claimed(self, ticket_id: int, taken: bool) -> UploadTicket | None:
        """After the claim's UPDATE committed: the ticket, its earlier attempt's files removed;
        or None, the ticket marked failed if its attempts are used up."""
        if not taken:
            self._give_up(ticket_id)
            return None
        ticket = UploadTicket.get_by_id(ticket_id)
        self.discard(stored_names(ticket.stored_names))
        return ticket

    def _give_up(self, ticket_id: int) -> None:
        """Mark ``ticket_id`` failed if it is queued with its attempts used up, then tidy it."""
        if (UploadTicket
                .update(state=FAILED, error=TOO_MANY_ATTEMPTS, finished_at=self.now())
                .where(UploadTicket.id == ticket_id, UploadTicket.state == QUEUED,
                       UploadTicket.attempts >= self.settings.upload_max_attempts)
                .execute()) != 1:
            return
        log.warning("upload ticket %s failed: %s", ticket_id, TOO_MANY_ATTEMPTS)
        ticket = UploadTicket.get_by_id(ticket_id)
        self.tidy(ticket.id, ticket.stored_names, ticket.file_path)

    def run_once(self) -> bool:
        """Claim and process the oldest queued ticket; False when there was none to claim."""
        ticket = self._claim_skipping() if db.for_update else self._claim_oldest()
        if ticket is None:
            return False
        self.process(ticket)
        return True

    def _claimable(self, now: int) -> Any:
        """The queued tickets claimable at ``now``, oldest first."""
        return (UploadTicket.select(UploadTicket.id)
                .where(UploadTicket.state == QUEUED, UploadTicket.lease_until <= now)
                .order_by(UploadTicket.id))

    def _claim_oldest(self) -> UploadTicket | None:
        """SQLite: claim the oldest claimable ticket (one writer at a time there anyway)."""
        # Read the candidates fully first: an open SELECT would pin a stale SQLite snapshot.
        candidates = list(self._claimable(self.lease_now()).limit(_CANDIDATES).scalars())
        for ticket_id in candidates:
            ticket = self.claim(ticket_id)
            if ticket is not None:
                return ticket
        return None

    def _claim_skipping(self) -> UploadTicket | None:
        """PostgreSQL: lock the oldest claimable ticket no other worker holds locked (``SKIP
        LOCKED``) and claim it in that transaction, so N workers take N different tickets
        instead of all racing for one row; the UPDATE stays the guard."""
        for _ in range(_CANDIDATES):
            now = self.lease_now()
            with db.atomic():
                ticket_id = (self._claimable(now).limit(1)
                             .for_update(of=UploadTicket, skip_locked=True).scalar())
                taken = ticket_id is not None and self._take(ticket_id, now)
            if ticket_id is None:
                return None
            ticket = self._claimed(ticket_id, taken)
            if ticket is not None:
                return ticket
        return None

    def process_pending(self) -> int:
        """Process queued tickets until none is left; the number processed."""
        count = 0
        while self.run_once():
            count += 1
        return count

    def recover(self) -> int:
        """At start-up: remove the spools of processes that are gone, then ``check``; the number
        of tickets queued again."""
        self.sweep_spools()
        return self.check()

    def check(self) -> int:
        """What the worker does now and then: requeue expired leases, finish the removals of
        ended tickets a crash cut short, sweep orphan files, mark this process's spool alive;
        the number of tickets queued again."""
        requeued = self.requeue_expired()
        self.finish_removals()
        self.sweep_incoming()
        os.utime(self.own_spool())
        return requeued

    def finish_removals(self) -> int:
        """Remove the files (and upload) of ended tickets whose ``stored_names`` is not empty: a
        crash came between their commit and ``tidy`` (the ticket's own worker may be just about
        to do it: removing a name twice is harmless). The oldest ``_SWEEP_BATCH`` each time; the
        number of tickets."""
        ended = list(as_tuples(UploadTicket
                               .select(UploadTicket.id, UploadTicket.stored_names,
                                       UploadTicket.file_path)
                               .where(UploadTicket.stored_names != "",
                                      UploadTicket.state.in_((DONE, FAILED)))
                               .order_by(UploadTicket.id)
                               .limit(_SWEEP_BATCH)
                               .tuples()))
        for ticket_id, recorded, file_path in ended:
            self.tidy(ticket_id, recorded, file_path)
        return len(ended)

    def sweep_spools(self) -> None:
        """Remove the spool dirs of other processes that are gone: named after this host and a
        process id no process has now, or untouched (dir and files) for longer than a request's
        body may take plus a margin, whatever their host (a live process touches its own with
        each ``check``). Loose files of the old one-spool layout go by age too."""
        if not self.spools.is_dir():
            return
        cutoff = time.time() - self.settings.body_timeout - _SPOOL_MARGIN
        host = socket.gethostname()
        for path in self.spools.iterdir():
            if path == self.spool or not (_dead_owner(path.name, host)
                                          or _newest(path) < cutoff):
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)

    def requeue_expired(self) -> int:
        """Queue again the ``working`` tickets whose lease ran out (their worker died, hangs or
        lost the database; a lease of 0 is a row from before leases), then remove the files they
        recorded: no doc refers to them, since a done ticket is not ``working``."""
        now = self.lease_now()
        expired = list(as_tuples(UploadTicket
                                 .select(UploadTicket.id, UploadTicket.claim_token,
                                         UploadTicket.stored_names)
                                 .where(UploadTicket.state == WORKING,
                                        UploadTicket.lease_until < now)
                                 .order_by(UploadTicket.id)
                                 .tuples()))
        requeued = 0
        for ticket_id, token, names in expired:
            # Conditional on the claim read and its lease still expired: a worker that renewed
            # meanwhile keeps its ticket, and a newer claim is not this one.
            if (UploadTicket
                    .update(state=QUEUED, started_at=0, lease_until=0, claim_token="")
                    .where(UploadTicket.id == ticket_id, UploadTicket.state == WORKING,
                           UploadTicket.claim_token == token, UploadTicket.lease_until < now)
                    .execute()) == 1:
                log.warning("upload ticket %s queued again: its lease ran out", ticket_id)
                self.discard(stored_names(names))
                requeued += 1
        if requeued:
            self._wake.set()
        return requeued

    def sweep_incoming(self) -> int:
        """Remove the files of ``incoming`` a done or failed ticket names (at any age: a crash
        came between its commit and the unlink), and those older than ``upload_orphan_seconds``
        that no queued or working ticket names (their insert never committed); the number. The
        oldest ``_SWEEP_BATCH`` files are looked at each time.

        Unnamed ones only by age: a request moves its file here just before its ticket commits,
        possibly in another process, so "no ticket names it" alone would remove a file about to
        be named. Ages are modification times (the file system's or the bucket's): wall-clock time.
        """
        cutoff = time.time() - self.settings.upload_orphan_seconds
        batch = dict((ref, age) for age, ref in sorted(self.incoming.listing())[:_SWEEP_BATCH])
        if not batch:
            return 0
        # Rows from before references hold the file's path: looked up under both.
        aliases = {alias: ref for ref in batch for alias in self.incoming.aliases(ref)}
        states = {aliases[path]: state
                  for path, state in as_tuples(UploadTicket
                                               .select(UploadTicket.file_path, UploadTicket.state)
                                               .where(UploadTicket.file_path.in_(list(aliases)))
                                               .tuples())}
        orphans = [ref for ref, age in batch.items()
                   if states.get(ref) in (DONE, FAILED)
                   or (age < cutoff and states.get(ref) not in (QUEUED, WORKING))]
        for ref in orphans:
            self.incoming.remove(ref)
        return len(orphans)

    # -- the worker thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Recover from a crash, then process tickets in a daemon thread until ``stop`` (a
        recovery the database cuts short is finished by the thread's checks); nothing in a
        process without the worker (API_UPLOAD_WORKER off)."""
        if self._thread is not None or not self.settings.upload_worker:
            return
        _guarded(self.recover)
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
        shutil.rmtree(self.spool, ignore_errors=True)  # the server answers no request any more

    def _loop(self) -> None:
        next_check = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            if time.monotonic() >= next_check:  # at most once per poll interval
                next_check = time.monotonic() + self.settings.upload_poll_seconds
                _guarded(self.check)
            if not _guarded(self.run_once):
                self._wake.wait(self.settings.upload_poll_seconds)

    def process(self, ticket: UploadTicket) -> None:
        """Turn one claimed ticket into a doc; ``UploadQueue`` (worker.py) does it."""
        raise NotImplementedError


def _guarded(step: Callable[[], Any]) -> bool:
    """Run one step of the worker thread on a connection of its own; whether it found work. A
    failure is logged and the thread goes on (the next pass may find the database back)."""
    try:
        with db.connection_context():
            return bool(step())
    except Exception as error:
        if database_failed(error):
            log.warning("upload worker step failed, database unavailable: %r", error)
        else:
            log.exception("upload worker step failed")
        return False


def stored_names(recorded: str) -> list[str]:
    """The storage names a ticket recorded (``stored_names``: a JSON list, or empty)."""
    return list(json.loads(recorded)) if recorded else []


def _modified(path: Path) -> float:
    """The file's modification time; +inf when it is gone already (nothing to sweep)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _newest(path: Path) -> float:
    """The latest modification time of ``path`` and (a dir) the files in it."""
    try:
        inside = list(path.iterdir()) if path.is_dir() else []
    except FileNotFoundError:
        return float("inf")  # gone already
    return max([_modified(path), *(_modified(entry) for entry in inside)])


def _dead_owner(name: str, host: str) -> bool:
    """Whether a spool dir named ``<host>-<pid>-<random>`` is this host's and its process has
    ended (a pid used again only keeps the dir until its age bound)."""
    owner = name.rsplit("-", 2)
    if len(owner) != 3 or owner[0] != host or not owner[1].isdigit():
        return False
    try:
        os.kill(int(owner[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
