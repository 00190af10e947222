"""``GET /media/{d2}/{d1}/{name}``: thumbnails and originals, served by the app (spec §10.2 names).

The secret in the name is the capability: the doc's ``secret`` for thumbnails, its
``original_secret`` for the original. Anything else — a wrong secret, directory digits that do not
belong to the id, a label the doc lacks, a name outside the strict pattern — is a plain 404, so a
stranger learns nothing about private docs. Files never change under a name (a replaced file gets
new secrets), so they are cached for a year; private docs only in the browser's own cache. A
storage backend that cannot be reached (S3 down) is a 503 with ``Retry-After``, never a 500: the
file is not gone, and clients and proxies try again. A GET asks the store once (the object
and its length); the log names the doc and the label, never the file's name (its secret).

Players seek: a GET with one byte range (``Range: bytes=a-b``, ``a-``, ``-n``) is a 206 with just
those bytes, read from the store by range (a seek on disk, S3's ``Range``), never the whole
file; a range past the end is a 416 with ``Content-Range: bytes */<size>``. A malformed Range,
more than one range, an ``If-Range`` other than the file's ETag, or a HEAD get the whole file
(200), as RFC 9110 §14 allows. Every answer says ``Accept-Ranges: bytes`` and carries a strong
ETag made from the file's name (a name never changes its bytes). docs/protocol-choices.md,
"Range requests (issue 15)".

``GET /media/icons/<name>`` serves members' icons, the URLs user.get hands out
(``api.media.names.icon_url``): ``default.png`` (drawn once, never changed) for a member without an
icon of their own, else the member's own in its sizes, under a name holding the icon's secret (a
new icon gets a new one). Both are cached for a year like any other media file.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import re
from functools import cache
from typing import BinaryIO

import falcon
from PIL import Image, ImageDraw

from api.core.context import AppContext, MediaFiles
from api.core.errors import RETRY_AFTER_SECONDS
from api.media.imaging import OTHER_MIME
from api.media.names import (
    DEFAULT_ICON_PATH,
    ICON_SIZES,
    ORIGINAL,
    icon_name,
    media_path,
    shown,
    storage_name,
)
from api.media.storage import RangeNotSatisfiable, StorageUnavailable, byte_span
from api.models.docs import Doc, Media, Thumb
from keys.models import User

log = logging.getLogger("api.media")

_NAME = re.compile(r"(\d{1,18})\.([0-9a-f]{8,32})\.([0-9a-z]{1,12})\.([0-9a-z]{1,8})")
_DEFAULT_NAME = DEFAULT_ICON_PATH.rpartition("/")[2]
_ICON_NAME = re.compile(r"(\d{1,18})\.([0-9a-f]{16})\.(\d{1,4})\.jpg")
_YEAR = 365 * 24 * 3600
_THUMB_TYPE = "image/jpeg"
# The types of the files the worker makes beside the original (thumbnails, video and audio
# renditions), by their extension; an original has the type sniffed from its content.
_RENDITION_TYPES = {
    "jpg": _THUMB_TYPE,
    "mp4": "video/mp4",
    "m4v": "video/mp4",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "mp3": "audio/mpeg",
    "webm": "video/webm",
    "ogv": "video/ogg",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
}
# One range (RFC 9110 §14.1.2), digits only; a longer header is no player's and is ignored.
_BYTE_RANGE = re.compile(r"([0-9]*)-([0-9]*)")
_RANGE_HEADER_MAX = 256
_ICON_CACHE = ["public", f"max-age={_YEAR}", "immutable"]


class MediaResource:
    """Serves stored media files by their public names."""

    def __init__(self, ctx: AppContext) -> None:
        self.storage: MediaFiles = ctx.storage

    def on_get(self, req: falcon.Request, resp: falcon.Response, d2: str, d1: str,
               name: str) -> None:
        """The file, or 404 unless every part of the name matches the doc."""
        match = _NAME.fullmatch(name)
        if match is None:
            raise falcon.HTTPNotFound()
        doc_id, secret, label, ext = int(match[1]), match[2], match[3], match[4]
        if media_path(doc_id, secret, label, ext) != f"/media/{d2}/{d1}/{name}":
            raise falcon.HTTPNotFound()
        doc = Doc.get_or_none(Doc.id == doc_id)
        if doc is None or not self._known(doc, secret, label, ext):
            raise falcon.HTTPNotFound()
        resp.content_type = _content_type(doc, label, ext)
        resp.set_header("X-Content-Type-Options", "nosniff")
        if label == ORIGINAL and doc.media == "other":
            # Never let an uploaded document render as a page on our origin.
            resp.downloadable_as = f"{doc.id}.{doc.original_ext}"
        _serve(req, resp, self.storage, storage_name(doc_id, secret, label, ext),
               ["public" if doc.is_public else "private", f"max-age={_YEAR}", "immutable"])

    on_head = on_get

    @staticmethod
    def _known(doc: Doc, secret: str, label: str, ext: str) -> bool:
        """Whether the secret, label and extension name one of this doc's files: its original,
        a thumbnail, or a web rendition of a video or audio doc."""
        if label == ORIGINAL:
            return ext == doc.original_ext and hmac.compare_digest(secret, doc.original_secret)
        if not hmac.compare_digest(secret, doc.secret):
            return False
        return any(model.select().where(model.doc == doc, model.label == label,
                                        model.ext == ext).exists() for model in (Thumb, Media))


def _serve(req: falcon.Request, resp: falcon.Response, storage: MediaFiles, stored: str,
           cache_control: list[str]) -> None:
    """The stored file: whole (200; a HEAD only its length), or the one byte range a GET asks
    for (206), or 416 when no byte of the file is in that range. ``cache_control`` goes on
    the file's answers alone, never on a 404, 416 or 503."""
    etag = _etag(stored)
    wanted = _wanted_range(req, etag)
    resp.accept_ranges = "bytes"
    try:
        stream, size = _read(req, storage, stored, wanted)
    except RangeNotSatisfiable as error:
        resp.status = falcon.HTTP_416
        resp.set_header("Content-Range", f"bytes */{error.size}")
        resp.cache_control = ["no-store"]  # a range-blind cache must not keep it for the URL
        return
    resp.etag = etag
    resp.cache_control = cache_control
    if stream is None:  # HEAD
        resp.content_length = size
    elif wanted is None:
        resp.set_stream(stream, size)
    else:
        first, last = byte_span(*wanted, size)
        resp.status = falcon.HTTP_206
        resp.content_range = (first, last, size)
        resp.set_stream(stream, last - first + 1)


def _read(req: falcon.Request, storage: MediaFiles, stored: str,
          wanted: tuple[int | None, int | None] | None) -> tuple[BinaryIO | None, int]:
    """The stored file, or the ``wanted`` part of it (no stream for a HEAD), and its whole
    length; 404 when it is not there, 503 when the store cannot be reached."""
    try:
        if req.method == "HEAD":
            return None, storage.size(stored)
        if wanted is None:
            return storage.fetch(stored)
        return storage.fetch_range(stored, *wanted)
    except FileNotFoundError:
        raise falcon.HTTPNotFound() from None
    except StorageUnavailable as error:
        log.warning("%s not served, storage unavailable: %s", shown(stored), error)
        raise falcon.HTTPServiceUnavailable(retry_after=RETRY_AFTER_SECONDS) from None


def _etag(stored: str) -> str:
    """A strong ETag: the bytes under a name never change. A digest, so the header does not
    repeat the name's secret."""
    return f'"{hashlib.blake2b(stored.encode(), digest_size=12).hexdigest()}"'


def _wanted_range(req: falcon.Request, etag: str) -> tuple[int | None, int | None] | None:
    """(start, end) of the one byte range a GET asks for, or None for the whole file: no Range,
    a malformed one (ignored, RFC 9110 §14.2), several ranges (the whole file instead, §14.1.2
    allows it), an ``If-Range`` that is not this file's ETag (a date never matches: no
    Last-Modified is sent), or a HEAD (range handling is defined for GET alone)."""
    header = req.get_header("Range")
    if req.method != "GET" or header is None or len(header) > _RANGE_HEADER_MAX:
        return None
    if_range = req.get_header("If-Range")
    if if_range is not None and if_range.strip() != etag:
        return None
    unit, equals, ranges = header.strip(" \t").partition("=")
    specs = [spec.strip(" \t") for spec in ranges.split(",")]
    specs = [spec for spec in specs if spec]  # empty list elements are allowed (RFC 9110 §5.6.1)
    if unit.lower() != "bytes" or not equals or len(specs) != 1:
        return None
    match = _BYTE_RANGE.fullmatch(specs[0])
    if match is None or match[1] == match[2] == "":
        return None
    start, end = (int(match[1]) if match[1] else None), (int(match[2]) if match[2] else None)
    if start is not None and end is not None and end < start:
        return None
    return start, end


def _content_type(doc: Doc, label: str, ext: str) -> str:
    if label != ORIGINAL:
        return _RENDITION_TYPES.get(ext, OTHER_MIME)
    if doc.media == "other":
        return OTHER_MIME if doc.original_mime != "application/pdf" else doc.original_mime
    return doc.original_mime or OTHER_MIME


DEFAULT_ICON_PIXELS = 64  # its width and height
_ICON_BACKGROUND, _ICON_FIGURE = (221, 221, 221), (160, 160, 160)


@cache
def default_icon() -> bytes:
    """The default member icon, a grey head-and-shoulders silhouette, as PNG bytes (drawn once)."""
    size = DEFAULT_ICON_PIXELS
    image = Image.new("RGB", (size, size), _ICON_BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.ellipse((size * 0.32, size * 0.14, size * 0.68, size * 0.50), fill=_ICON_FIGURE)
    draw.ellipse((size * 0.14, size * 0.56, size * 0.86, size * 1.30), fill=_ICON_FIGURE)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


class IconResource:
    """Members' icons: the default one, and each member's own (``<user_id>.<icon_secret>.<size>
    .jpg``, api/media/icons.py) while it is theirs; any other name is a plain 404."""

    def __init__(self, ctx: AppContext) -> None:
        self.storage: MediaFiles = ctx.storage

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str = "") -> None:
        """Mounted at DEFAULT_ICON_PATH (no name) and at ICON_ROUTE."""
        resp.set_header("X-Content-Type-Options", "nosniff")
        if name in ("", _DEFAULT_NAME):
            data = default_icon()
            resp.content_type = "image/png"
            resp.cache_control = _ICON_CACHE
            resp.accept_ranges = "none"  # a small picture drawn in memory, not a stored file
            resp.content_length = len(data)
            if req.method == "GET":
                resp.data = data
            return
        match = _ICON_NAME.fullmatch(name)
        if match is None or int(match[3]) not in ICON_SIZES:
            raise falcon.HTTPNotFound()
        stored = icon_name(int(match[1]), match[2], int(match[3]))
        if stored != f"icons/{name}":  # one name per file: no leading zeros
            raise falcon.HTTPNotFound()
        member = User.select(User.icon_secret).where(User.id == int(match[1])).first()
        if member is None or not member.icon_secret or not hmac.compare_digest(
                match[2], member.icon_secret):
            raise falcon.HTTPNotFound()
        resp.content_type = _THUMB_TYPE
        _serve(req, resp, self.storage, stored, _ICON_CACHE)

    on_head = on_get
