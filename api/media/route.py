"""``GET /media/{d2}/{d1}/{name}``: thumbnails and originals, served by the app (spec §10.2 names).

The secret in the name is the capability: the doc's ``secret`` for thumbnails, its
``original_secret`` for the original. Anything else — a wrong secret, directory digits that do not
belong to the id, a label the doc lacks, a name outside the strict pattern — is a plain 404, so a
stranger learns nothing about private docs. Files never change under a name (a replaced file gets
new secrets), so they are cached for a year; private docs only in the browser's own cache. A
storage backend that cannot be reached (S3 down) is a 503 with ``Retry-After``, never a 500: the
file is not gone, and clients and proxies try again. A GET asks the store once (the object
and its length); the log names the doc and the label, never the file's name (its secret).

``GET /media/icons/<name>`` serves members' icons, the URLs user.get hands out
(``api.media.names.icon_url``): ``default.png`` (drawn once, never changed) for a member without an
icon of their own, else the member's own in its sizes, under a name holding the icon's secret (a
new icon gets a new one). Both are cached for a year like any other media file.
"""

from __future__ import annotations

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
from api.media.storage import StorageUnavailable
from api.models.docs import Doc, Thumb
from keys.models import User

log = logging.getLogger("api.media")

_NAME = re.compile(r"(\d{1,18})\.([0-9a-f]{8,32})\.([0-9a-z]{1,12})\.([0-9a-z]{1,8})")
_DEFAULT_NAME = DEFAULT_ICON_PATH.rpartition("/")[2]
_ICON_NAME = re.compile(r"(\d{1,18})\.([0-9a-f]{16})\.(\d{1,4})\.jpg")
_YEAR = 365 * 24 * 3600
_THUMB_TYPE = "image/jpeg"


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
        stream, size = _open(req, self.storage, storage_name(doc_id, secret, label, ext))
        resp.content_type = _content_type(doc, label)
        resp.cache_control = ["public" if doc.is_public else "private", f"max-age={_YEAR}",
                              "immutable"]
        resp.set_header("X-Content-Type-Options", "nosniff")
        if label == ORIGINAL and doc.media == "other":
            # Never let an uploaded document render as a page on our origin.
            resp.downloadable_as = f"{doc.id}.{doc.original_ext}"
        _send(resp, stream, size)

    on_head = on_get

    @staticmethod
    def _known(doc: Doc, secret: str, label: str, ext: str) -> bool:
        """Whether the secret, label and extension name one of this doc's files."""
        if label == ORIGINAL:
            return ext == doc.original_ext and hmac.compare_digest(secret, doc.original_secret)
        if not hmac.compare_digest(secret, doc.secret):
            return False
        return Thumb.select().where(Thumb.doc == doc, Thumb.label == label,
                                    Thumb.ext == ext).exists()


def _open(req: falcon.Request, storage: MediaFiles, stored: str) -> tuple[BinaryIO | None, int]:
    """The stored file (no stream for a HEAD) and its length; 404 when it is not there, 503 when
    the store cannot be reached."""
    try:
        if req.method == "HEAD":
            return None, storage.size(stored)
        return storage.fetch(stored)
    except FileNotFoundError:
        raise falcon.HTTPNotFound() from None
    except StorageUnavailable as error:
        log.warning("%s not served, storage unavailable: %s", shown(stored), error)
        raise falcon.HTTPServiceUnavailable(retry_after=RETRY_AFTER_SECONDS) from None


def _send(resp: falcon.Response, stream: BinaryIO | None, size: int) -> None:
    if stream is None:  # HEAD
        resp.content_length = size
        return
    resp.set_stream(stream, size)


def _content_type(doc: Doc, label: str) -> str:
    if label != ORIGINAL:
        return _THUMB_TYPE
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
        resp.cache_control = ["public", f"max-age={_YEAR}", "immutable"]
        resp.set_header("X-Content-Type-Options", "nosniff")
        if name in ("", _DEFAULT_NAME):
            data = default_icon()
            resp.content_type = "image/png"
            _send(resp, None if req.method == "HEAD" else io.BytesIO(data), len(data))
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
        stream, size = _open(req, self.storage, stored)
        resp.content_type = _THUMB_TYPE
        _send(resp, stream, size)

    on_head = on_get
