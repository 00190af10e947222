"""Processing a claimed upload ticket: sniff the file, read its EXIF, render thumbnails, store the
files and write the doc, its thumbs, tags and album entry in one transaction. A failure removes
every file it stored and marks the ticket failed; the spooled upload is removed either way.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import secrets
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
from api.content.tags import add_tags
from api.media.imaging import PhotoInfo, Rejected, Sniffed, read_photo, render_thumbs, sniff
from api.media.names import ORIGINAL, doc_file_names, storage_name
from api.media.queue import DONE, FAILED, QUEUED, TicketQueue
from api.media.storage import Storage, build_storage
from api.models.docs import Album, AlbumDoc, Doc, Thumb, UploadTicket
from keys.db import db, is_busy
from keys.models import User

log = logging.getLogger("api.uploads")

_SECRET_BYTES = 8  # 16 hex digits in every media file name


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



class UploadQueue(TicketQueue):
    """The queue of ``TicketQueue`` whose ``process`` turns a ticket into a doc (or a replaced
    file)."""

    def __init__(self, settings: Settings, storage: Storage, *,
                 clock: Callable[[], float] = time.time,
                 new_secret: Callable[[int], str] = secrets.token_hex) -> None:
        super().__init__(settings, storage, clock=clock, new_secret=new_secret)
        # Decoding is memory-hungry: at most two uploads (worker or async=0 requests) at a time.
        self._slots = threading.BoundedSemaphore(2)
        # Pillow refuses (at twice this) or warns about huge images itself; sniff refuses above it.
        Image.MAX_IMAGE_PIXELS = settings.max_image_pixels

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
                self.settle(ticket.id, state=QUEUED, started_at=0)
                return
            if isinstance(error, Rejected):
                log.info("upload ticket %s refused: %s", ticket.id, error)
            else:
                log.exception("upload ticket %s failed", ticket.id)
            self.settle(ticket.id, state=FAILED, error=type(error).__name__,
                        finished_at=self.now())
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


def build_uploads(settings: Settings, *, clock: Callable[[], float] = time.time,
                  new_secret: Callable[[int], str] = secrets.token_hex) -> UploadQueue:
    """The upload queue over the media storage ``settings`` names (``queue.storage``); the app
    context holds both, and the queue's worker runs with the server."""
    return UploadQueue(settings, build_storage(settings), clock=clock, new_secret=new_secret)

