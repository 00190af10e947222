"""The upload queue (spec §6): tickets live in the ``upload_tickets`` table, so a restart loses
nothing; a worker thread claims them one at a time with a conditional UPDATE (queued → working), so
no ticket is processed twice, on SQLite or PostgreSQL alike.

Processing a ticket sniffs the file, reads its EXIF, renders thumbnails, stores the files and writes
the doc, its thumbs, tags and album entry in one transaction. A failure removes every file it stored
and marks the ticket failed; the spooled upload is removed either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peewee import fn
from PIL import Image

from api.config import Settings
from api.core.context import AppContext, UploadedFile
from api.media.imaging import PhotoInfo, Rejected, Sniffed, read_photo, render_thumbs, sniff
from api.media.names import ORIGINAL, media_path
from api.models.docs import Album, AlbumDoc, Doc, Thumb, UploadTicket
from api.media.storage import Storage, build_storage
from api.content.tags import add_tags
from keys.db import db, is_busy
from keys.models import User

log = logging.getLogger("api.uploads")

QUEUED, WORKING, DONE, FAILED = "queued", "working", "done", "failed"
NO_GEO = "none"  # options["geo"] when the caller sent lat=lng=-999
_SECRET_BYTES = 8  # 16 hex digits in every media file name
_WAIT_STEP = 0.05


def storage_name(doc_id: int, secret: str, label: str, ext: str) -> str:
    """The storage name of one media file: its URL path without ``/media/``."""
    return media_path(doc_id, secret, label, ext).removeprefix("/media/")


def doc_file_names(doc: Doc, thumbs: list[Thumb]) -> list[str]:
    """Every stored file of ``doc``: the original and its thumbnails (doc.delete removes these)."""
    names = [storage_name(doc.id, doc.original_secret, ORIGINAL, doc.original_ext)]
    return names + [storage_name(doc.id, doc.secret, t.label, t.ext) for t in thumbs]


def ticket_label(ticket: UploadTicket) -> str:
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


@dataclass(frozen=True)
class _Rendered:
    """What processing learned from the file before any write."""

    sniffed: Sniffed
    md5: str
    info: PhotoInfo
    orientation: int
    width: int
    height: int
    thumbs: list[tuple[str, int, int, bytes]]


class UploadQueue:
    """Accepts uploads as tickets and turns them into docs; also the background worker
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
        # Decoding is memory-hungry: at most two uploads (worker or async=0 requests) at a time.
        self._slots = threading.BoundedSemaphore(2)
        self._accepting = threading.Lock()
        # Pillow refuses (at twice this) or warns about huge images itself; sniff refuses above it.
        Image.MAX_IMAGE_PIXELS = settings.max_image_pixels

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
        """Finish ``ticket_id`` now if nobody claimed it, else wait (bounded) for whoever did."""
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
                          .tuples())
        for (ticket_id,) in candidates:
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
            waiting = {path for (path,) in UploadTicket.select(UploadTicket.file_path)
                       .where(UploadTicket.state == QUEUED).tuples()}
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

    # -- processing -----------------------------------------------------------------------------

    def process(self, ticket: UploadTicket) -> None:
        """Turn one claimed ticket into a doc (or a replaced file); never raises."""
        with self._slots:
            self._process(ticket)

    def _process(self, ticket: UploadTicket) -> None:
        written: list[str] = []
        keep_file = False
        try:
            options = json.loads(ticket.params)
            target = ticket.replace_doc if ticket.replace_doc_id else None
            rendered = self._render(ticket, options, target)
            with db.atomic():
                stale = self._write(ticket, options, target, rendered, written)
            for name in stale:
                self.storage.delete(name)
        except Exception as error:
            for name in written:
                self.storage.delete(name)
            if is_busy(error):  # not the file's fault: queue it again for the next pass
                log.warning("upload ticket %s requeued, database busy: %r", ticket.id, error)
                keep_file = True
                (UploadTicket
                 .update(state=QUEUED, started_at=0)
                 .where(UploadTicket.id == ticket.id)
                 .execute())
                return
            if isinstance(error, Rejected):
                log.info("upload ticket %s refused: %s", ticket.id, error)
            else:
                log.exception("upload ticket %s failed", ticket.id)
            (UploadTicket
             .update(state=FAILED, error=type(error).__name__, finished_at=self.now())
             .where(UploadTicket.id == ticket.id)
             .execute())
        finally:
            if not keep_file:
                Path(ticket.file_path).unlink(missing_ok=True)

    def _render(self, ticket: UploadTicket, options: dict[str, Any],
                target: Doc | None) -> _Rendered:
        """Everything computed from the file, before anything is written."""
        sniffed = sniff(ticket.file_path, ticket.filename,
                        max_pixels=self.settings.max_image_pixels)
        if target is not None and sniffed.media != target.media:
            raise Rejected("a replacement must have the media type of the doc it replaces")
        digest = hashlib.md5(usedforsecurity=False)
        with open(ticket.file_path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        info, thumbs = PhotoInfo(), []
        orientation = options.get("dir") or 1
        width, height = sniffed.width, sniffed.height
        if sniffed.media == "photo":
            with Image.open(ticket.file_path) as image:
                info = read_photo(image)
                orientation = options.get("dir") or info.orientation
                thumbs = list(render_thumbs(image, orientation))
            if orientation >= 5:
                width, height = height, width
        return _Rendered(sniffed=sniffed, md5=digest.hexdigest(), info=info,
                         orientation=orientation, width=width, height=height, thumbs=thumbs)

    def _write(self, ticket: UploadTicket, options: dict[str, Any], target: Doc | None,
               rendered: _Rendered, written: list[str]) -> list[str]:
        """Store the files and rows (inside the caller's transaction); names of files now stale."""
        now = self.now()
        stale: list[str] = []
        file_fields = {
            "media": rendered.sniffed.media, "md5": rendered.md5, "width": rendered.width,
            "height": rendered.height, "orientation": rendered.orientation,
            "original_ext": rendered.sniffed.ext, "original_mime": rendered.sniffed.mime,
            "original_size": ticket.file_size, "exif": json.dumps(rendered.info.exif),
            "camera": rendered.info.camera[:128], "modified_at": now,
            # New secrets: media URLs are cached as immutable, so new content needs new names.
            "secret": self.new_secret(_SECRET_BYTES),
            "original_secret": self.new_secret(_SECRET_BYTES),
        }
        if target is None:
            doc = Doc.create(owner=ticket.user_id, posted_at=now,
                             **self._described(options, rendered.info, now), **file_fields)
        else:
            doc = target
            stale = doc_file_names(doc, list(doc.thumbs))
            Thumb.delete().where(Thumb.doc == doc).execute()
            for name, value in file_fields.items():
                setattr(doc, name, value)
            doc.save()
        self._store(doc, ticket.file_path, rendered, written)
        if target is None:
            self._attach(doc, options, ticket.user, now)
        (UploadTicket
         .update(state=DONE, doc=doc, finished_at=now)
         .where(UploadTicket.id == ticket.id)
         .execute())
        return stale

    @staticmethod
    def _described(options: dict[str, Any], info: PhotoInfo, now: int) -> dict[str, Any]:
        """A new doc's metadata: the caller's options first, then the EXIF, then defaults."""
        fields = {name: options[name] for name in (
            "title", "description", "license", "is_public", "is_family", "is_friend", "safety",
            "perm_comment", "perm_tag", "perm_tagme") if name in options}
        fields["created"] = (options.get("created") or info.created
                             or datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S"))
        geo = options.get("geo")
        if geo is None and info.lat is not None:
            geo = [info.lat, info.lng]
        if isinstance(geo, list):
            fields["lat"], fields["lng"] = geo
        return fields

    def _store(self, doc: Doc, source: str, rendered: _Rendered, written: list[str]) -> None:
        """Put the original and the thumbnails in storage, recording each name as it is written."""
        name = storage_name(doc.id, doc.original_secret, ORIGINAL, doc.original_ext)
        with open(source, "rb") as handle:
            written.append(name)
            self.storage.put(name, handle)
        rows = []
        for label, width, height, data in rendered.thumbs:
            name = storage_name(doc.id, doc.secret, label, "jpg")
            written.append(name)
            self.storage.put(name, io.BytesIO(data))
            rows.append({"doc": doc, "label": label, "w": width, "h": height, "ext": "jpg"})
        if rows:
            Thumb.insert_many(rows).execute()

    @staticmethod
    def _attach(doc: Doc, options: dict[str, Any], owner: User, now: int) -> None:
        """Tags and album membership asked for at upload."""
        members = list(User.select().where(User.id.in_(options.get("member_ids", []))))
        add_tags(doc, keywords=options.get("keywords", []), members=members, added_by=owner,
                 now=now)
        album_id = options.get("album_id")
        album = Album.get_or_none(Album.id == album_id, Album.owner == owner) if album_id else None
        if album is None:
            return
        last = (AlbumDoc.select(fn.MAX(AlbumDoc.position)).where(AlbumDoc.album == album).scalar())
        AlbumDoc.create(album=album, doc=doc, position=(last or 0) + 1, added_at=now)
        if album.cover_id is None:
            Album.update(cover=doc, modified_at=now).where(Album.id == album.id).execute()


def install(ctx: AppContext) -> UploadQueue:
    """Give ``ctx`` its media storage and upload queue; the queue's worker runs with the server."""
    storage = build_storage(ctx.settings)
    queue = UploadQueue(ctx.settings, storage, clock=ctx.clock, new_secret=ctx.new_secret)
    ctx.services["storage"] = storage
    ctx.services["uploads"] = queue
    ctx.background.append(queue)
    return queue
