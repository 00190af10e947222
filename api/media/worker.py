"""Processing a claimed upload ticket: sniff the file, read its EXIF, render thumbnails, record
the names of the files it will store (committed first, so recovery can remove them after a crash),
store them, and write the doc, its thumbs, tags and album entry in one transaction.

A file goes only after the state change that makes it unneeded has committed: the upload once the
ticket is done or failed, stored files once the ticket is failed or queued again, a replaced doc's
old files once they are recorded in its done ticket. A database or disk failure queues the ticket
again (backing off) instead of failing it; when even that cannot be written, the ticket's lease
runs out and any worker queues it again (queue.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peewee import fn
from PIL import Image

from api.config import Settings
from api.content.tags import add_tags
from api.media.imaging import (
    PhotoInfo,
    Rejected,
    Sniffed,
    read_photo,
    release_memory,
    render_thumbs,
    sniff,
)
from api.media.names import ORIGINAL, doc_file_names, storage_name
from api.media.queue import (
    DONE,
    FAILED,
    ClaimLost,
    TicketQueue,
    database_failed,
    disk_failed,
    held,
)
from api.media.storage import PRIVATE_DIR, Storage, build_storage
from api.media.video import (
    TRANSCODES,
    Limits,
    Probed,
    Rendition,
    drawn_poster,
    examine,
    lowered_priority,
    plan_renditions,
    poster,
    transcode,
    whole_seconds,
)
from api.models.docs import Album, AlbumDoc, Doc, Media, Thumb, UploadTicket
from keys.db import db, locked
from keys.models import User
from keys.notices import Notices

log = logging.getLogger("api.uploads")

_SECRET_BYTES = 8  # 16 hex digits in every media file name


class DecodesBusy(Exception):
    """Every decoding slot stayed taken for as long as the caller would wait."""


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
    probed: Probed | None = None  # video and audio (not MIDI)
    duration: int = 0  # whole seconds
    # Web renditions made in the spool (video and audio), with their whole seconds and bytes.
    renditions: list[tuple[Rendition, int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class _Plan:
    """The doc id and secrets the files will be stored under, and their storage names (the
    original first, then the thumbnails in the order of ``_Rendered.thumbs``, then the web
    renditions in the order of ``_Rendered.renditions``)."""

    doc_id: int
    secret: str
    original_secret: str
    names: list[str]


class UploadQueue(TicketQueue):
    """The queue of ``TicketQueue`` whose ``process`` turns a ticket into a doc (or a replaced
    file)."""

    def __init__(self, settings: Settings, storage: Storage, *,
                 clock: Callable[[], float] | None = None,
                 new_secret: Callable[[int], str] = secrets.token_hex,
                 notices: Notices | None = None) -> None:
        super().__init__(settings, storage, clock=clock, new_secret=new_secret, notices=notices)
        # Decoding is memory-hungry: at most two at a time (the worker's uploads, async=0 requests
        # and icons alike: ``decoding``).
        self._slots = threading.BoundedSemaphore(2)
        # Pillow refuses (at twice this) or warns about huge images itself; sniff refuses above it.
        Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
        # Told the seconds one upload's thumbnails took to render (the metrics; None: nobody).
        self.on_thumbnails: Callable[[float], None] | None = None

    def process(self, ticket: UploadTicket) -> None:
        """Turn one claimed ticket into a doc (or a replaced file); never raises. While it waits
        for a decoding slot its lease is renewed, so a queue of long decodes ahead of it cannot
        let the claim expire and spend the ticket's attempts; a claim lost meanwhile (or a
        database that fails the renewal) leaves the ticket to its lease and whoever holds it."""
        try:
            self._wait_for_slot(self._slots, ticket)
        except Exception as error:
            log.warning("upload ticket %s left to its lease while waiting: %r",
                        ticket.id, type(error).__name__)
            return
        try:
            self._process(ticket)
            release_memory()  # the decode's buffers, which glibc would keep (docs/uploads.md)
        finally:
            self._slots.release()

    def _wait_for_slot(self, slot: threading.BoundedSemaphore, ticket: UploadTicket) -> None:
        """Acquire ``slot``, renewing the ticket's lease while waiting (ClaimLost, or the
        database's error, when the renewal fails)."""
        while not slot.acquire(timeout=self.settings.upload_lease_seconds / 3):
            self.renew(ticket)

    @contextmanager
    def _transcoding(self, ticket: UploadTicket) -> Iterator[None]:
        """Hold the process's one transcoding slot (``TRANSCODES``), this ticket's decoding slot
        handed back meanwhile: photos and icons keep both decoding slots during a long
        transcode, and no ticket waits for the transcoding slot while holding a decoding one (so
        neither wait can close a cycle). The decoding slot is taken back afterwards (``process``
        releases it): its holders only decode, so that wait is short."""
        self._slots.release()
        try:
            self._wait_for_slot(TRANSCODES, ticket)
            try:
                yield
            finally:
                TRANSCODES.release()
        finally:
            self._slots.acquire()

    @contextmanager
    def decoding(self, timeout: float) -> Iterator[None]:
        """Hold one of the decoding slots uploads take, for a decode made elsewhere (a member's
        icon, api/web/profiles.py): the process then decodes at most two pictures at once, whatever
        asks; DecodesBusy when none frees within ``timeout`` seconds."""
        if not self._slots.acquire(timeout=timeout):
            raise DecodesBusy(f"no decoding slot freed in {timeout:g} s")
        try:
            yield
        finally:
            self._slots.release()

    def _process(self, ticket: UploadTicket) -> None:
        written: list[str] = []
        try:
            options = json.loads(ticket.params)
            target = ticket.replace_doc if ticket.replace_doc_id else None
            # The upload where this process can read it (fetched from the bucket with S3).
            with (self.incoming.local(ticket.file_path, self.own_spool()) as upload,
                  self._workdir(ticket) as folder):
                rendered = self._render(ticket, str(upload), options, target, folder)
                plan = self._plan(ticket, target, rendered)
                self._store(ticket, str(upload), plan, rendered, written)
            with db.atomic():
                stale = self._write(ticket, options, rendered, plan)
        except ClaimLost as error:  # the ticket and its upload are another worker's now
            log.warning("upload ticket %s abandoned: %s", ticket.id, error)
            self.discard(written)
            return
        except Exception as error:
            if database_failed(error) or disk_failed(error):  # not the file's fault: again later
                log.warning("upload ticket %s interrupted, %s unavailable: %r", ticket.id,
                            "database" if database_failed(error) else "disk", error)
                # Unless requeued, the doc may have committed after all (a commit whose answer
                # was lost): the files stay, and whoever requeues the ticket removes them.
                if self.back_off(ticket):
                    self.discard(written)
                return
            if isinstance(error, Rejected):
                log.info("upload ticket %s refused: %s", ticket.id, error)
            else:
                log.exception("upload ticket %s failed", ticket.id)
            # The doc's transaction did not commit: nothing refers to the files stored.
            if self.settle(ticket, state=FAILED, error=type(error).__name__,
                           finished_at=self.now()):
                self.tidy(ticket.id, ticket.stored_names, ticket.file_path)
            else:
                self.discard(written)
            return
        self.tidy(ticket.id, stale, ticket.file_path)

    @contextmanager
    def _workdir(self, ticket: UploadTicket) -> Iterator[Path]:
        """A dir of this process's spool for the renditions being made, removed afterwards
        whatever happens (a crash leaves it to the spool's sweep)."""
        folder = self.own_spool() / f"transcode-{ticket.id}-{secrets.token_hex(4)}"
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _render(self, ticket: UploadTicket, upload: str, options: dict[str, Any],
                target: Doc | None, folder: Path) -> _Rendered:
        """Everything computed from the file at ``upload``, before anything is written: for
        video and audio the renditions too, made in ``folder``."""
        sniffed = sniff(upload, ticket.filename,
                        max_pixels=self.settings.max_image_pixels,
                        max_decode_bytes=self.settings.max_decode_bytes)
        limits = Limits.of(self.settings)
        sniffed, probed = examine(upload, ticket.filename, sniffed, limits)
        if target is not None and sniffed.media != target.media:
            raise Rejected("a replacement must have the media type of the doc it replaces")
        self.renew(ticket)
        digest = hashlib.md5(usedforsecurity=False)
        with open(upload, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        self.renew(ticket)
        info, thumbs = PhotoInfo(), []
        orientation = options.get("dir") or 1
        width, height = sniffed.width, sniffed.height
        if sniffed.media == "photo":
            with Image.open(upload) as image:
                info = read_photo(image)
                orientation = options.get("dir") or info.orientation
                thumbs = self._thumbs(ticket, image, orientation)
            if orientation >= 5:
                width, height = height, width
        elif probed is not None:
            info = PhotoInfo(created=probed.created, exif=probed.details())
            thumbs = self._thumbs(ticket, poster(upload, probed, limits), 1)
            return self._transcoded(ticket, upload, probed, folder, _Rendered(
                sniffed=sniffed, md5=digest.hexdigest(), info=info, orientation=1, width=width,
                height=height, thumbs=thumbs, probed=probed, duration=probed.seconds))
        elif sniffed.media == "audio":  # one FFmpeg cannot play (MIDI): the drawn poster alone
            thumbs = self._thumbs(ticket, drawn_poster(), 1)
        return _Rendered(sniffed=sniffed, md5=digest.hexdigest(), info=info,
                         orientation=orientation, width=width, height=height, thumbs=thumbs)

    def _thumbs(self, ticket: UploadTicket, image: Image.Image,
                orientation: int) -> list[tuple[str, int, int, bytes]]:
        """``render_thumbs`` of a photo or a poster, renewing the lease between labels, the time
        taken told to ``on_thumbnails``."""
        thumbs = []
        rendering, started = 0.0, time.perf_counter()
        for thumb in render_thumbs(image, orientation):
            rendering += time.perf_counter() - started  # the renewals not counted
            thumbs.append(thumb)
            self.renew(ticket)
            started = time.perf_counter()
        if self.on_thumbnails is not None:
            self.on_thumbnails(rendering)
        return thumbs

    def _transcoded(self, ticket: UploadTicket, upload: str, probed: Probed, folder: Path,
                    rendered: _Rendered) -> _Rendered:
        """``rendered`` with its web renditions made in ``folder``: one transcode at a time in
        the process (``_transcoding``), the lease renewed while waiting and while it runs, the
        thread niced meanwhile (``transcode_nice``). Only the worker's thread gets here: an
        async=0 request leaves a video or a sound to it (``TicketQueue.wait``)."""
        folder.mkdir(mode=PRIVATE_DIR)
        plans = plan_renditions(probed, folder)
        limits = Limits.of(self.settings)
        with self._transcoding(ticket), lowered_priority(limits.nice):
            end = transcode(upload, probed, plans, limits, progress=lambda: self.renew(ticket))
        seconds = whole_seconds(end)
        made = [(plan, seconds, os.path.getsize(plan.path)) for plan in plans]
        # A sound's length is what decoded (its header's may be a guess: video.transcode).
        duration = seconds if probed.media == "audio" else rendered.duration or seconds
        return dataclasses.replace(rendered, duration=duration, renditions=made)

    def _plan(self, ticket: UploadTicket, target: Doc | None, rendered: _Rendered) -> _Plan:
        """Choose the doc id and secrets, and commit the storage names they make in the ticket's
        ``stored_names`` (renewing the lease) before any file is stored.

        A new doc's id is reserved by a row inserted and deleted in this transaction: neither
        AUTOINCREMENT (SQLite) nor a sequence (PostgreSQL) ever gives it again.
        """
        # New secrets: media URLs are cached as immutable, so new content needs new names.
        secret, original_secret = (self.new_secret(_SECRET_BYTES),
                                   self.new_secret(_SECRET_BYTES))
        with db.atomic():
            if target is None:
                doc_id = Doc.insert(owner=ticket.user_id, secret=secret,
                                    original_secret=original_secret).execute()
                Doc.delete().where(Doc.id == doc_id).execute()
            else:
                doc_id = target.id
            names = [storage_name(doc_id, original_secret, ORIGINAL, rendered.sniffed.ext)]
            names += [storage_name(doc_id, secret, label, "jpg")
                      for label, _w, _h, _data in rendered.thumbs]
            names += [storage_name(doc_id, secret, made.label, made.ext)
                      for made, _seconds, _size in rendered.renditions]
            self.renew(ticket, stored_names=json.dumps(names))
        return _Plan(doc_id=doc_id, secret=secret, original_secret=original_secret, names=names)

    def _store(self, ticket: UploadTicket, upload: str, plan: _Plan, rendered: _Rendered,
               written: list[str]) -> None:
        """Put the original (the file at ``upload``), the thumbnails and the web renditions in
        storage under the planned names, each name in ``written`` before its file is, renewing
        the lease between files."""
        original, *names = plan.names
        thumb_names, rendition_names = names[:len(rendered.thumbs)], names[len(rendered.thumbs):]
        written.append(original)
        with open(upload, "rb") as handle:
            self.storage.put(original, handle)
        for name, (_label, _w, _h, data) in zip(thumb_names, rendered.thumbs, strict=True):
            self.renew(ticket)
            written.append(name)
            self.storage.put(name, io.BytesIO(data))
        for name, (made, _seconds, _size) in zip(rendition_names, rendered.renditions,
                                                 strict=True):
            self.renew(ticket)
            written.append(name)
            with open(made.path, "rb") as handle:
                self.storage.put(name, handle)

    def _write(self, ticket: UploadTicket, options: dict[str, Any], rendered: _Rendered,
               plan: _Plan) -> str:
        """Write the rows (inside the caller's transaction) and mark the ticket done if its claim
        still holds (else ClaimLost, rolling it all back), recording in its ``stored_names`` the
        names of files now stale; that record ("" when none).

        A replacement re-reads its doc here (locked) and writes only the file fields: edits made
        while it ran stay, and the stale names are those of the files the doc has now, whoever
        stored them (an overlapping replacement's included).
        """
        now = self.now()
        stale: list[str] = []
        file_fields = {
            "media": rendered.sniffed.media, "md5": rendered.md5, "width": rendered.width,
            "height": rendered.height, "orientation": rendered.orientation,
            "original_ext": rendered.sniffed.ext, "original_mime": rendered.sniffed.mime,
            "original_size": ticket.file_size, "exif": json.dumps(rendered.info.exif),
            "camera": rendered.info.camera[:128], "modified_at": now,
            "duration": rendered.duration,
            "secret": plan.secret, "original_secret": plan.original_secret,
        }
        if not ticket.replace_doc_id:
            described = self._described(options, rendered.info, now)
            if not described.get("title") and rendered.probed is not None:
                described["title"] = rendered.probed.tags.get("title", "")  # an audio tag
            doc = Doc.create(id=plan.doc_id, owner=ticket.user_id, posted_at=now,
                             **described, **file_fields)
            self._attach(doc, options, ticket.user, now)
        else:
            doc = locked(Doc.select().where(Doc.id == plan.doc_id), Doc).get_or_none()
            if doc is None:
                raise Rejected("the doc to replace was deleted meanwhile")
            stale = doc_file_names(doc, list(doc.thumbs))
            Thumb.delete().where(Thumb.doc == doc).execute()
            Media.delete().where(Media.doc == doc).execute()
            Doc.update(**file_fields).where(Doc.id == doc.id).execute()
        rows = [{"doc": doc, "label": label, "w": width, "h": height, "ext": "jpg"}
                for label, width, height, _data in rendered.thumbs]
        if rows:
            Thumb.insert_many(rows).execute()
        medias = [{"doc": doc, "label": made.label, "ext": made.ext, "width": made.width,
                   "height": made.height, "duration": seconds, "size": size}
                  for made, seconds, size in rendered.renditions]
        if medias:
            Media.insert_many(medias).execute()
        recorded = json.dumps(stale) if stale else ""
        if (UploadTicket
                .update(state=DONE, doc=doc, finished_at=now, stored_names=recorded)
                .where(held(ticket))
                .execute()) != 1:
            raise ClaimLost(f"upload ticket {ticket.id} was queued again before it was done")
        return recorded

    @staticmethod
    def _described(options: dict[str, Any], info: PhotoInfo, now: int) -> dict[str, Any]:
        """A new doc's metadata: the caller's options first, then the EXIF, then defaults."""
        fields: dict[str, Any] = {name: options[name] for name in (
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


def build_uploads(settings: Settings, *, clock: Callable[[], float] | None = None,
                  new_secret: Callable[[int], str] = secrets.token_hex,
                  notices: Notices | None = None) -> UploadQueue:
    """The upload queue over the media storage ``settings`` names (``queue.storage``); the app
    context holds both, and the queue's worker runs with the server (``clock``, ``notices``:
    ``TicketQueue``)."""
    return UploadQueue(settings, build_storage(settings), clock=clock, new_secret=new_secret,
                       notices=notices)

